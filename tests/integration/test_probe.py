"""optimizer.recipes.probe on the real bundled models: a head started from a linear probe of the
frozen base classifies before any training step, the weights folded into the layer predict what
the probe predicted, a decoder's probe reads what its ``score`` reads, and the classifier recipe
starts from the probe when the trial's ``head_init`` asks for it (the fold itself is tested exactly
in tests/unit/test_probe_fit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.data import load_examples

TICKETS = Path(__file__).resolve().parents[2] / "datasets" / "tickets"


def probed_accuracies(model_name: str, train_rows: int, labels: list[str] | None = None):
    """(probe record, train accuracy, validation accuracy) of the probed head, untrained."""
    import torch

    from evals.classify import HeadClassifier
    from evals.models import load_sequence_classifier, load_tokenizer
    from optimizer.recipes.classifier import zero_head
    from optimizer.recipes.probe import probe_head

    train = load_examples(TICKETS / "train.jsonl")
    validation = load_examples(TICKETS / "validation.jsonl")
    labels = labels or sorted({e.label for e in train})
    train = [e for e in train if e.label in labels][:train_rows]
    validation = [e for e in validation if e.label in labels]
    index = {label: i for i, label in enumerate(labels)}
    torch.manual_seed(0)
    model, tokenizer = load_sequence_classifier(model_name, labels), load_tokenizer(model_name)
    zero_head(model)
    record = probe_head(model, tokenizer, [e.text for e in train], [index[e.label] for e in train], max_tokens=192)
    predictor = HeadClassifier(model, tokenizer, labels, max_tokens=192)

    def accuracy(examples) -> float:
        predictions = predictor.predict([e.text for e in examples])
        return sum(p.label == e.label for p, e in zip(predictions, examples)) / len(examples)

    return record, accuracy(train), accuracy(validation)


@pytest.mark.slow
def test_a_probed_encoder_head_classifies_before_training():
    # 40 labels, chance 2.5%: a probe of MiniLM's frozen first-token features on 400 training rows
    record, train, validation = probed_accuracies("minilm-l6", 400)
    assert record["head_init"] == "probe" and record["probe_seconds"] > 0
    assert train == pytest.approx(record["probe_train_accuracy"], abs=0.005)  # the fold is exact
    assert validation > 0.5


@pytest.mark.slow
def test_a_decoders_probe_reads_the_last_real_tokens_hidden_state():
    # SmolLM2's score reads the last non-pad token of a padded batch: the probe's features must be
    # that token's final hidden state, as the text alone (no padding) gives it
    import torch

    from evals.models import load_sequence_classifier, load_tokenizer
    from optimizer.recipes.probe import output_layer_name, pooled_features

    model = load_sequence_classifier("smollm2-135m-instruct", ["a", "b"])
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    texts = ["refund", "I was charged twice for the same order, please fix it", "Why is there a fee?"]
    features = pooled_features(model, tokenizer, texts, max_tokens=64)
    assert output_layer_name(model) == "score" and model.score.bias is None
    with torch.inference_mode():
        alone = [model.model(**tokenizer(t, return_tensors="pt")).last_hidden_state[0, -1] for t in texts]
    assert torch.allclose(features, torch.stack(alone).float(), atol=1e-3)


@pytest.mark.slow
def test_a_two_label_probe_splits_scikit_learns_single_row():
    labels = sorted({e.label for e in load_examples(TICKETS / "train.jsonl")})[:2]
    record, train, validation = probed_accuracies("minilm-l6", 200, labels)
    assert train == pytest.approx(record["probe_train_accuracy"], abs=0.005)
    assert validation > 0.75  # chance 50%


@pytest.mark.slow
@pytest.mark.parametrize("head_init", ["zero", "probe"])
def test_the_classifier_recipe_starts_from_the_probe_when_asked(head_init):
    # five steps at a small rate: a zero head is still near chance (2.5%), a probed one classifies
    from evals.models import load_tokenizer
    from optimizer.recipes import classifier
    from optimizer.recipes.common import Job
    from optimizer.space import SearchSpec, TrialSettings

    train = load_examples(TICKETS / "train.jsonl")[:400]
    validation = load_examples(TICKETS / "validation.jsonl")[:120]
    settings = TrialSettings(base_model="minilm-l6", method="full", head="classifier", rank=0, alpha=0.0,
                             dropout=0.0, learning_rate=1e-5, epochs=1, batch_size=16, target_modules="all",
                             head_learning_rate=1e-4, head_init=head_init)
    job = Job(settings=settings, search=SearchSpec(max_steps=5),
              labels=sorted({e.label for e in load_examples(TICKETS / "train.jsonl")}), train=train, seed=0,
              bf16=False)
    trained = classifier.run(job, load_tokenizer("minilm-l6"))
    predictions = trained.predictor.predict([e.text for e in validation])
    accuracy = sum(p.label == e.label for p, e in zip(predictions, validation)) / len(validation)
    assert trained.details["head_init"] == head_init and trained.stats.steps == 5
    if head_init == "probe":
        assert trained.details["head_learning_rate"] == "the body's" and accuracy > 0.5
    else:
        assert accuracy < 0.2
