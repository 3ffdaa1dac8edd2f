"""Issue 18 §5: probing cannot confound feature scale with quality: features standardised on the probe's training
split, the probe learning rate chosen from a grid on held-out training data (never the dev split), the choice
recorded."""

from __future__ import annotations

import math

import pytest
import torch

from r3f_utils.methods.probing import ProbeConfig, build_probe, fit_probe, select_learning_rate, standardizer


class _FixedEncoder(torch.nn.Module):
    """A 'model' whose encoder returns given features as the <s> state (probe_encoder reads base_model)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(table, requires_grad=False)
        self.base_model = self._Enc(self.table)

    class _Enc(torch.nn.Module):
        def __init__(self, table: torch.Tensor) -> None:
            super().__init__()
            self.table = table

        def forward(self, input_ids, attention_mask=None, **_):
            from types import SimpleNamespace

            return SimpleNamespace(last_hidden_state=self.table[input_ids[:, 0]].unsqueeze(1))


def _data(scale: float, n_train: int = 60, n_dev: int = 40, dim: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n_train + n_dev,), generator=g)
    feats = torch.randn(n_train + n_dev, dim, generator=g) * 0.5
    feats[:, 0] += 2.0 * labels - 1.0  # informative direction
    feats = feats * scale + 3.0 * scale  # a large offset and scale: what a raw probe would have to fight
    examples = [{"input_ids": [i], "attention_mask": [1], "label": int(labels[i])} for i in range(len(labels))]
    return feats, examples[:n_train], examples[n_train:]


def _collate(batch):
    return {"input_ids": torch.tensor([b["input_ids"] for b in batch]),
            "attention_mask": torch.tensor([b["attention_mask"] for b in batch]),
            "labels": torch.tensor([b["label"] for b in batch])}


def _probe(scale: float, **cfg):
    from r3f_utils.methods.probing import probe_encoder

    feats, train, dev = _data(scale)
    return probe_encoder(_FixedEncoder(feats), train, dev, _collate, num_labels=2, metrics=["accuracy"],
                         cfg=ProbeConfig(epochs=20, batch_size=16, **cfg))


def test_standardised_features_make_the_probe_blind_to_feature_scale() -> None:
    small, large = _probe(1.0), _probe(100.0)
    assert small.metrics == pytest.approx(large.metrics)  # same verdict whatever the features' scale
    assert small.learning_rate == large.learning_rate
    raw_small = _probe(1.0, standardize=False, learning_rate_grid=())
    raw_large = _probe(100.0, standardize=False, learning_rate_grid=())
    assert raw_small.metrics != raw_large.metrics  # without it, scale alone changes the probe's result


def test_the_learning_rate_is_chosen_on_held_out_training_data_and_recorded() -> None:
    result = _probe(1.0)
    sel = result.selection
    assert result.learning_rate in (1e-4, 1e-3, 1e-2) and sel["learning_rate"] == result.learning_rate
    assert set(sel["holdout_scores"]) == {"0.0001", "0.001", "0.01"}
    assert sel["num_fit"] + sel["num_holdout"] == result.num_train and sel["num_holdout"] == 12
    assert sel["selected_on"] == "held-out part of the probe's training split"
    assert result.config["learning_rate_grid"] == (1e-4, 1e-3, 1e-2) and result.config["standardize"] is True
    # the dev split plays no part: flipping every dev label leaves the choice unchanged
    feats, train, dev = _data(1.0)
    flipped = [{**e, "label": 1 - e["label"]} for e in dev]
    from r3f_utils.methods.probing import probe_encoder

    again = probe_encoder(_FixedEncoder(feats), train, flipped, _collate, num_labels=2, metrics=["accuracy"],
                          cfg=ProbeConfig(epochs=20, batch_size=16))
    assert again.learning_rate == result.learning_rate and again.selection == sel


def test_selection_picks_the_best_held_out_rate_with_ties_to_the_first(monkeypatch) -> None:
    feats, train, _ = _data(1.0)
    x = feats[:60]
    y = torch.tensor([e["label"] for e in train])
    cfg = ProbeConfig(epochs=3, batch_size=16, learning_rate_grid=(1e-6, 1e-1))
    lr, record = select_learning_rate(x, y, 2, "accuracy", cfg)
    scores = record["holdout_scores"]
    assert lr == max((1e-6, 1e-1), key=lambda v: (scores[repr(v)], -(1e-6, 1e-1).index(v)))
    import r3f_utils.methods.probing as probing

    monkeypatch.setattr(probing, "_score", lambda *_: 0.5)  # every rate scores the same: a tie
    same, tied = select_learning_rate(x, y, 2, "accuracy", cfg)
    assert same == 1e-6 and set(tied["holdout_scores"].values()) == {50.0}
    mean, std = standardizer(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
    assert torch.equal(mean, torch.tensor([2.0, 5.0])) and std[0] == 1.0 and std[1] == pytest.approx(1e-6)
    probe = build_probe(cfg, 8, 2)
    assert all(math.isfinite(v) for v in fit_probe(probe, x, y, cfg))


@pytest.mark.parametrize(("field", "value"), [("learning_rate_grid", (1e-3, -1.0)), ("holdout_fraction", 1.0),
                                              ("standardize", "yes")])
def test_bad_protocol_values_name_the_field(field, value) -> None:
    with pytest.raises(ValueError, match=f"probe parameter {field}="):
        ProbeConfig(**{field: value})
