"""Training on a teacher's labels with a human-checked gold set (``data.gold``): gold rows never reach
training, accuracy is measured on them and agreement on the teacher-labelled rows, and the verdict
says which it measured."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from sweep_fixtures import write_tiny_task

from evals.baselines import Pricing, classical
from evals.cost import Economics
from evals.data import DataSpec, held_out, load_splits, normalise_text
from evals.record import remember_data, study_data
from evals.report import build_report, provenance_lines, report_json
from optimizer.config import ConfigError, load_config

TEACHER = {"model": "gpt-teacher", "base_url": "https://api.example.com/v1"}
TEACHER_NAME = "gpt-teacher at https://api.example.com/v1"


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path: Path, found: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in found))
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Teacher-labelled train and test; the human-checked gold rows, three of them also in train
    (one with other case and punctuation) under a wrong teacher label."""
    data = write_tiny_task(tmp_path / "task", per_label=(20, 6, 8))
    gold = rows(data / "validation.jsonl")
    labels = sorted({r["label"] for r in gold})
    other = {label: labels[(labels.index(label) + 1) % len(labels)] for label in labels}
    copies = [{"text": gold[0]["text"], "label": other[gold[0]["label"]]},
              {"text": gold[1]["text"], "label": other[gold[1]["label"]]},
              {"text": gold[2]["text"].upper() + " !", "label": other[gold[2]["label"]]}]
    train = [{**r, "teacher": TEACHER} for r in rows(data / "train.jsonl") + copies]
    # The teacher is wrong on every fourth test row: agreement with it is not accuracy.
    test = [{**r, "label": other[r["label"]] if i % 4 == 0 else r["label"], "teacher": TEACHER}
            for i, r in enumerate(rows(data / "test.jsonl"))]
    return {"train": write(tmp_path / "train.jsonl", train), "test": write(tmp_path / "test.jsonl", test),
            "gold": str(data / "validation.jsonl"), "truth": str(data / "test.jsonl")}


def test_gold_rows_are_the_validation_split_and_never_trained_on(files):
    splits = load_splits(DataSpec(train=files["train"], gold=files["gold"]))
    gold = rows(Path(files["gold"]))
    assert [(e.text, e.label) for e in splits.validation] == [(r["text"], r["label"]) for r in gold]
    assert all(e.teacher is None for e in splits.validation)  # human-checked
    gold_texts = {normalise_text(r["text"]) for r in gold}
    assert not any(normalise_text(e.text) in gold_texts for e in splits.train + splits.test)
    assert splits.gold_removed == 3
    assert "data.gold: removed 3 training rows whose text is a gold row's" in " ".join(splits.warnings)
    assert all(e.teacher == TEACHER_NAME for e in splits.train + splits.test)  # test split off the teacher's rows


def test_gold_and_validation_together_is_a_config_error(tmp_path, files):
    config = tmp_path / "roitune.yaml"
    config.write_text(json.dumps({"data": {"train": files["train"], "gold": files["gold"], "validation": files["gold"]}}))
    with pytest.raises(ConfigError, match="data.gold and data.validation are both set"):
        load_config(config)


def _classical(splits):
    return classical(splits.train, held_out(splits, None, 0), splits.labels,
                     Pricing(Economics().hardware_price(), "cpu-2core"), batch_size=16, seed=0,
                     on_start=lambda name, total: None)


def test_accuracy_on_gold_rows_and_agreement_on_teacher_rows(files):
    splits = load_splits(DataSpec(train=files["train"], gold=files["gold"], test=files["test"]))
    record = _classical(splits)
    gold, teacher_test, truth = rows(Path(files["gold"])), rows(Path(files["test"])), rows(Path(files["truth"]))
    validation = record.validation.predicted_labels(splits.labels)
    test = record.test.predicted_labels(splits.labels)
    assert record.validation.accuracy == sum(validation[i] == r["label"] for i, r in enumerate(gold)) / len(gold)
    agreement = sum(test[i] == r["label"] for i, r in enumerate(teacher_test)) / len(teacher_test)
    accuracy = sum(test[i] == r["label"] for i, r in enumerate(truth)) / len(truth)
    assert record.test.accuracy == agreement != accuracy

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    remember_data(study, splits.labels, splits.validation, splits.test)
    data = study_data(study)
    assert data.teachers == {"test": TEACHER_NAME}
    report = build_report([record], data, Economics(current_error_rate=0.5), compute_dollars=0)
    assert report_json(report)["labels"] == {"validation": "accuracy", "test": f"agreement with {TEACHER_NAME}"}
    assert report.recommendation.winner == "classical"
    assert (f"Its agreement with {TEACHER_NAME} on the test split: {100 * agreement:.1f}%"
            in report.recommendation.sentence)


def test_without_gold_the_verdict_says_it_measured_agreement(files):
    splits = load_splits(DataSpec(train=files["train"]))  # validation and test split off the teacher's rows
    record = _classical(splits)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    remember_data(study, splits.labels, splits.validation, splits.test)
    report = build_report([record], study_data(study), Economics(current_error_rate=0.5), compute_dollars=0)
    assert report.recommendation.sentence.endswith(
        f"These are agreement with the labels of {TEACHER_NAME} on the validation split, not accuracy: no "
        "human-checked rows were scored; set data.gold to measure accuracy.")
    assert report_json(report)["recommendation"]["evidence"]["measures"]["validation"] == f"agreement with {TEACHER_NAME}"
    assert any("The validation labels come from" in line for line in provenance_lines(report))


def test_human_labels_leave_the_verdict_as_it_was(tmp_path):
    data = write_tiny_task(tmp_path / "task", per_label=(12, 4, 4))
    splits = load_splits(DataSpec(train=str(data / "train.jsonl"), validation=str(data / "validation.jsonl"),
                                  test=str(data / "test.jsonl")))
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    remember_data(study, splits.labels, splits.validation, splits.test)
    report = build_report([_classical(splits)], study_data(study), Economics(current_error_rate=0.5), compute_dollars=0)
    assert study_data(study).teachers == {} and "agreement" not in report.recommendation.sentence
