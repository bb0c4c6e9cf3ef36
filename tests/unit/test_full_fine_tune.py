"""Full fine-tuning is offered where the model fits the machine, and refused, saying why, where not."""

from __future__ import annotations

import pytest
import torch

from optimizer.recipes import common
from optimizer.space import TrialSettings


def settings(method: str) -> TrialSettings:
    return TrialSettings(base_model="m", method=method, head="classifier", rank=0, alpha=0.0, dropout=0.0,
                         learning_rate=1e-4, epochs=1, batch_size=8, target_modules="all")


def test_every_weight_trains_when_the_model_fits():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)).requires_grad_(False)
    trained = common.train_weights(model, settings("full"), "SEQ_CLS")
    assert all(p.requires_grad for p in trained.parameters())


def test_a_model_too_large_for_this_machine_is_refused(monkeypatch):
    model = torch.nn.Linear(1000, 1000)  # 1M parameters: about 16 MB with gradients and AdamW state
    monkeypatch.setattr(common, "_available_memory", lambda: 4_000_000)
    with pytest.raises(common.RefusedFullFineTune, match="needs about .* GiB .* use lora or qlora"):
        common.train_weights(model, settings("full"), "SEQ_CLS")


def test_precision_follows_what_the_hardware_has(monkeypatch):
    from evals import models

    monkeypatch.setattr(models, "cpu_bf16_units", lambda: ["AMX"])
    assert models.bf16_training("auto", "cpu")
    monkeypatch.setattr(models, "cpu_bf16_units", lambda: [])  # an AMD EPYC: bf16 is 8.9x slower there
    assert not models.bf16_training("auto", "cpu")
    assert models.bf16_training("bfloat16", "cpu") and not models.bf16_training("float32", "cuda")
