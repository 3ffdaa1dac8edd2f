"""The fine-tuning methods, one short file each, apart from the reproduction machinery.

``r3f`` (the R3F objective, pure torch), ``noise`` (the embedding hook all methods perturb through), ``r4f``
(spectral-norm head), ``smart``, ``freelb`` (the baselines), ``trainers`` (R3F's Trainer integration),
``probing`` (frozen-encoder linear probes), and their small helpers ``heads``, ``guards``, ``collators``.
"""
