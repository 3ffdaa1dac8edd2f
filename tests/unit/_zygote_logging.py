"""Preloaded by a warm-kernel test: a logging handler created in the zygote, bound to its stderr at import time
(as transformers' own handler is)."""

import logging

_logger = logging.getLogger("r3f_test_zygote")
_logger.addHandler(logging.StreamHandler())
_logger.propagate = False
