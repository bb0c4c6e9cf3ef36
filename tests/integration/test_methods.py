"""Every method and head trains the real bundled models and beats the untrained model: LoRA,
QLoRA, DPO and full fine-tuning; generative and classifier heads; a decoder LM and an encoder.
Also: early stopping keeps the best check, a run stuck at chance fails, a full fine-tune exports
a standalone model, and any BERT-like encoder by path takes a classifier head."""

from __future__ import annotations

import json

import optuna
import pytest

from evals.models import bf16_training
from evals.record import read_record, sweep_trials
from optimizer.space import SearchSpec
from sweep_fixtures import study_of, sweep, tiny_config

SMOLLM = "smollm2-135m-instruct"
MINILM = "minilm-l6"


def untrained_accuracy(model_dir, config, head: str) -> float:
    """Validation accuracy of the base model with a fresh adapter (what training must beat)."""
    from evals.classify import HeadClassifier, LabelScorer, PromptTemplate
    from evals.data import load_splits
    from evals.models import load_causal_lm, load_sequence_classifier, load_tokenizer
    from optimizer.config import load_config

    cfg = load_config(config)
    splits = load_splits(cfg.data)
    tokenizer = load_tokenizer(str(model_dir))
    if head == "classifier":
        import torch

        from optimizer.recipes.classifier import zero_head

        torch.manual_seed(cfg.seed)
        untrained = load_sequence_classifier(str(model_dir), splits.labels)
        zero_head(untrained)  # as the recipe starts it: every label equally likely
        predictor = HeadClassifier(untrained, tokenizer, splits.labels)
    else:
        template = PromptTemplate(cfg.task.instruction, tuple(splits.labels), list_labels=False)
        predictor = LabelScorer(load_causal_lm(str(model_dir)), tokenizer, template)
    predictions = predictor.predict([e.text for e in splits.validation])
    return sum(p.label == e.label for p, e in zip(predictions, splits.validation)) / len(splits.validation)


@pytest.mark.slow
@pytest.mark.parametrize("model,method,head", [(SMOLLM, "lora", "generative"), (SMOLLM, "qlora", "generative"),
                                              (SMOLLM, "dpo", "generative"), (SMOLLM, "full", "generative"),
                                              (SMOLLM, "lora", "classifier"), (MINILM, "lora", "classifier"),
                                              (MINILM, "full", "classifier")])
def test_each_method_trains_and_beats_the_untrained_base(tmp_path, model, method, head):
    # The real bundled models at the search space's default ranges: the sweep's known-good first
    # trial (optimizer/starts.py) trains until validation stops improving and keeps its best point.
    # A random tiny model would need far more steps to learn anything.
    defaults = SearchSpec()
    config = tiny_config(tmp_path, model, base_models=[model], methods=[method], heads=[head], dpo_pairs=["mined"],
                         epochs=[8], batch_size=[8], learning_rate=defaults.learning_rate.model_dump(),
                         full_learning_rate=defaults.full_learning_rate.model_dump(), per_label=(8, 6, 4))
    sweep(config)
    study = study_of(config)
    [trial] = sweep_trials(study)
    record = read_record(study, trial)
    assert record.state == "COMPLETE", record.fail_reason
    assert record.method == method and record.settings["head"] == head
    assert record.training.loss_last < record.training.loss_first
    trained = record.validation.accuracy
    untrained = untrained_accuracy(model, config, head)
    assert trained >= untrained + 0.25, (trained, untrained)
    # The kept checkpoint is the best check's (after DPO, none is: DPO moved the weights on), the
    # record says why training stopped, and in what precision it trained on this hardware.
    if method == "dpo":
        assert record.training.best_check is None and "DPO:" in record.training.stop_reason
    else:
        best = record.training.checks[record.training.best_check - 1]
        assert best == max(record.training.checks) and trained == pytest.approx(best, abs=1e-4)
    assert record.training.stop_reason and record.training.planned_steps >= record.training.steps
    assert record.training.precision == ("bfloat16" if bf16_training("auto", "cpu") else "float32")
    # Priced like a baseline, on a named machine, with the weights saved where the record says.
    assert record.cost_per_item > 0 and record.items_per_second > 0 and record.compute_dollars > 0
    assert record.measured_on and record.meter.timed_items >= 64
    from pathlib import Path

    saved = Path(record.adapter_path)
    weights = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    assert (saved / weights).is_file() and (saved / "roitune.json").is_file()
    if method == "dpo":
        assert record.details["dpo_pairs_used"] > 0




@pytest.mark.slow
def test_a_trial_whose_loss_never_leaves_chance_fails_with_that_reason(tmp_path):
    # MiniLM with a classifier head at a learning rate that moves nothing: the loss stays at
    # ln(4) for the whole first epoch, which is a failed trial, not a finished one at chance.
    config = tiny_config(tmp_path, MINILM, base_models=[MINILM], methods=["full"], heads=["classifier"],
                         epochs=[3], full_learning_rate={"low": 1e-12, "high": 1e-12},
                         head_learning_rate={"low": 1e-12, "high": 1e-12}, per_label=(40, 6, 4))
    sweep(config)
    study = study_of(config)
    [trial] = sweep_trials(study)
    record = read_record(study, trial)
    assert trial.state == optuna.trial.TrialState.FAIL
    assert record.fail_reason.startswith("StuckAtChance: loss stayed at its starting level"), record.fail_reason


@pytest.mark.slow
def test_a_full_fine_tune_exports_a_standalone_model_that_predicts_as_scored(tmp_path):
    from cli_support import ok

    from evals.data import load_splits
    from optimizer.config import load_config

    config = tiny_config(tmp_path, MINILM, base_models=[MINILM], methods=["full"], heads=["classifier"],
                         epochs=[6], full_learning_rate=SearchSpec().full_learning_rate.model_dump())
    sweep(config)
    study = study_of(config)
    [trial] = sweep_trials(study)
    record = read_record(study, trial)
    assert record.state == "COMPLETE" and record.test is not None, record.fail_reason
    out = tmp_path / "bundle"
    shown = ok("export", "-c", str(config), "--trial", "best", "--out", str(out)).stdout
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert "roitune serve" in shown  # a classifier head: vLLM cannot serve it
    cfg = load_config(config)
    predictions = tmp_path / "predictions.jsonl"
    ok("predict", str(out), cfg.data.test, "--out", str(predictions))
    labels = study.user_attrs["labels"]
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [line["label"] for line in lines] == [labels[i] for i in record.test.predictions]
    gold = [e.label for e in load_splits(cfg.data).test]
    assert sum(line["label"] == g for line, g in zip(lines, gold)) / len(gold) == record.test.accuracy


def test_any_bert_like_encoder_by_path_trains_a_classifier_head(tmp_path):
    # A 2-layer random BERT saved as a local folder, like any Hugging Face encoder: the sweep
    # knows it has no generative head and trains a classifier head on it.
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from evals.models import bundled_dir

    folder = tmp_path / "tiny-bert"
    tokenizer = AutoTokenizer.from_pretrained(bundled_dir(MINILM))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    config_path = tiny_config(tmp_path, folder, methods=["lora", "full"], heads=["generative"], epochs=[2],
                              trials=2, learning_rate={"low": 1e-3, "high": 1e-3})
    sweep(config_path)
    study = study_of(config_path)
    records = [read_record(study, t) for t in sweep_trials(study)]
    assert [(r.state, r.method, r.settings["head"]) for r in records] == [
        ("COMPLETE", "full", "classifier"), ("COMPLETE", "lora", "classifier")]
