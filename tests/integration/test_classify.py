"""evals.classify: label-constrained scoring equals a brute-force computation over full
sequences, always yields a valid label, does not depend on batching or padding, and gets an
obvious task right with the real SmolLM2."""

from __future__ import annotations

import math

import pytest

from evals.classify import HeadClassifier, LabelScorer, PromptTemplate, _shared_length, label_token_ids

# "billing" is a prefix of the other two and all three share their first tokens, so the trie
# branches at the root, after "billing" (end-of-turn vs "_"), and after "billing_".
SHARED_PREFIX_LABELS = ("billing", "billing_dispute", "billing_question", "refund")

TICKETS = [
    "refund",
    "I was charged twice for the same order, please fix it",
    "Why is there a fee on my statement?",
    "hello",
    "The invoice for March shows an amount I never agreed to and I would like someone to explain "
    "every line of it before I pay anything more to you.",
    "Where is my money back?",
    "Dispute: charge #4411",
    "Can you explain the late payment fee?",
    "I want my money back now",
    "ok",
]


def brute_force_log_probs(model, prompt: list[int], sequences: dict[str, list[int]]) -> dict[str, float]:
    """log P(label) by running prompt + the label's full token path through the model, one
    sequence at a time (no padding, no cache), and multiplying at each step the probability of
    the label's token renormalised over the tokens some label allows at that point."""
    import torch

    result = {}
    for label, tokens in sequences.items():
        ids = torch.tensor([prompt + tokens])
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0].double()
        total = 0.0
        for depth, token in enumerate(tokens):
            allowed = sorted({seq[depth] for seq in sequences.values()
                              if len(seq) > depth and seq[:depth] == tokens[:depth]})
            restricted = logits[len(prompt) - 1 + depth, allowed].log_softmax(-1)
            total += float(restricted[allowed.index(token)])
        result[label] = total
    return result


@pytest.fixture(scope="module")
def tiny_scorer(tiny_llama):
    tokenizer, model = tiny_llama
    template = PromptTemplate("Route the billing ticket.", SHARED_PREFIX_LABELS)
    return LabelScorer(model, tokenizer, template)


def test_the_labels_really_share_token_prefixes(tiny_scorer):
    sequences = label_token_ids(tiny_scorer.tokenizer, SHARED_PREFIX_LABELS)
    billing, dispute, question = (sequences[name] for name in SHARED_PREFIX_LABELS[:3])

    assert dispute[: len(billing) - 1] == billing[:-1]  # "billing" then end-of-turn vs "_..."
    assert dispute[: len(billing)] == question[: len(billing)]
    assert dispute[len(billing)] != question[len(billing)]
    # The scorer needs logits past the prompt: the label tree (tree attention) is exercised.
    assert len(tiny_scorer._prefixes) == 3 and tiny_scorer._prefixes[0] == ()


@pytest.mark.parametrize("prompts, expected", [
    ([[1, 2, 3, 4], [1, 2, 3, 5]], 3),
    ([[1, 2, 3], [1, 2, 3, 4]], 2),  # each prompt keeps at least its last token
    ([[1, 2], [3, 2]], 0),
    ([[1, 2, 3]], 0),  # a lone prompt has nothing to share
])
def test_shared_prompt_head_length(prompts, expected):
    assert _shared_length(prompts) == expected


def test_label_log_probs_match_brute_force(tiny_scorer, tiny_llama):
    _, model = tiny_llama
    sequences = label_token_ids(tiny_scorer.tokenizer, SHARED_PREFIX_LABELS)
    prompts = [tiny_scorer.prompt_ids(text) for text in TICKETS[:6]]
    assert len({len(p) for p in prompts}) > 3  # different lengths: left padding in the batch
    assert _shared_length(prompts) > 10  # the system prompt is run once and its cache reused

    batched = tiny_scorer.label_log_probs(prompts)

    for row, prompt in enumerate(prompts):
        expected = brute_force_log_probs(model, prompt, sequences)
        for column, label in enumerate(SHARED_PREFIX_LABELS):
            assert float(batched[row, column]) == pytest.approx(expected[label], abs=1e-4), (row, label)
    # The labels really get different probabilities (a random model far from uniform).
    spread = batched.exp().max(-1).values - batched.exp().min(-1).values
    assert float(spread.min()) > 0.01


def test_predictions_are_valid_labels_and_sum_to_one(tiny_scorer):
    predictions = tiny_scorer.predict(TICKETS, batch_size=4)

    assert len(predictions) == len(TICKETS)
    for prediction in predictions:
        assert prediction.label in SHARED_PREFIX_LABELS
        assert list(prediction.distribution) == list(SHARED_PREFIX_LABELS)
        assert math.fsum(prediction.distribution.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.probability == max(prediction.distribution.values())
        assert prediction.distribution[prediction.label] == prediction.probability


def test_batching_and_padding_do_not_change_results(tiny_scorer):
    one = tiny_scorer.predict(TICKETS, batch_size=1)
    eight = tiny_scorer.predict(TICKETS, batch_size=8)

    for a, b in zip(one, eight):
        assert a.label == b.label
        for label in SHARED_PREFIX_LABELS:
            assert a.distribution[label] == pytest.approx(b.distribution[label], abs=1e-4)


def test_predictions_come_back_in_input_order(tiny_scorer):
    forward = tiny_scorer.predict(TICKETS, batch_size=3)
    backward = tiny_scorer.predict(TICKETS[::-1], batch_size=3)

    for a, b in zip(forward, backward[::-1]):
        assert a.distribution == pytest.approx(b.distribution, abs=1e-4)


def test_single_token_labels_use_one_forward(tiny_llama):
    tokenizer, model = tiny_llama
    labels = ("positive", "negative")  # one token each, then end-of-turn: branching at the root only
    scorer = LabelScorer(model, tokenizer, PromptTemplate("Sentiment?", labels))
    sequences = label_token_ids(tokenizer, labels)
    assert scorer._prefixes == [()]
    prompt = scorer.prompt_ids("great product")

    [row] = scorer.label_log_probs([prompt]).tolist()

    expected = brute_force_log_probs(model, prompt, sequences)
    assert row == pytest.approx([expected[label] for label in labels], abs=1e-4)


def test_long_prompts_are_truncated_from_the_start(tiny_llama):
    tokenizer, model = tiny_llama
    scorer = LabelScorer(model, tokenizer, PromptTemplate("Route.", SHARED_PREFIX_LABELS), max_prompt_tokens=32)
    full = LabelScorer(model, tokenizer, PromptTemplate("Route.", SHARED_PREFIX_LABELS)).prompt_ids(TICKETS[4])

    ids = scorer.prompt_ids(TICKETS[4])

    assert len(full) > 32 and ids == full[-32:]  # the end (where the answer starts) is kept
    assert scorer.predict([TICKETS[4]])[0].label in SHARED_PREFIX_LABELS


def test_few_shot_examples_go_into_the_prompt(tiny_scorer):
    from evals.data import Example

    shots = [Example("my card was charged twice", "billing_dispute")]
    messages = tiny_scorer.template.messages("refund please", shots)

    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"].endswith(f"categories: {', '.join(SHARED_PREFIX_LABELS)}.")
    assert messages[2]["content"] == "billing_dispute"
    assert len(tiny_scorer.prompt_ids("refund please", shots)) > len(tiny_scorer.prompt_ids("refund please"))
    [prediction] = tiny_scorer.predict(["refund please"], shots=[shots])
    assert prediction.label in SHARED_PREFIX_LABELS


def _tiny_sequence_classifier(tokenizer, labels):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(1)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=len(labels),
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForSequenceClassification(config).eval()
    with torch.no_grad():
        model.score.weight.normal_(0.0, 1.0)  # a decisive head, so a wrong pooled token would show
    return model


def test_head_classifier_returns_valid_labels_independent_of_batching(tiny_llama):
    tokenizer, _ = tiny_llama
    labels = ["billing", "shipping", "technical"]
    head = HeadClassifier(_tiny_sequence_classifier(tokenizer, labels), tokenizer, labels)
    side_before = tokenizer.padding_side

    one = head.predict(TICKETS, batch_size=1)
    many = head.predict(TICKETS, batch_size=4)

    assert tokenizer.padding_side == side_before  # the shared tokenizer is not mutated
    assert {p.label for p in one} <= set(labels)
    assert len({p.label for p in one}) > 1  # not a constant answer
    for a, b in zip(one, many):
        assert a.label == b.label
        assert math.fsum(a.distribution.values()) == pytest.approx(1.0, abs=1e-5)
        for label in labels:
            assert a.distribution[label] == pytest.approx(b.distribution[label], abs=1e-4)


@pytest.mark.slow
def test_head_classifier_on_an_encoder_does_not_depend_on_padding():
    import torch

    from evals.models import load_sequence_classifier, load_tokenizer

    labels = ["billing", "shipping", "technical"]
    torch.manual_seed(0)
    model = load_sequence_classifier("minilm-l6", labels, device="cpu").eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0)
    head = HeadClassifier(model, load_tokenizer("minilm-l6"), labels)

    one = head.predict(TICKETS, batch_size=1)
    many = head.predict(TICKETS, batch_size=len(TICKETS))

    for a, b in zip(one, many):
        assert a.label in labels and a.label == b.label
        for label in labels:
            assert a.distribution[label] == pytest.approx(b.distribution[label], abs=1e-4)


REVIEWS = [
    ("This is the best purchase I have made all year. It works perfectly and I love it!", "positive"),
    ("Absolutely wonderful service, friendly staff and fast delivery. Highly recommended.", "positive"),
    ("Fantastic quality, I am delighted and would happily buy it again.", "positive"),
    ("Terrible. It broke after one day and support never answered. I want my money back.", "negative"),
    ("The worst experience ever: rude staff, late delivery and a damaged product.", "negative"),
    ("Awful quality, complete waste of money. I hate it and I am very disappointed.", "negative"),
]


@pytest.mark.slow
def test_real_smollm_gets_obvious_sentiment_right(smollm):
    tokenizer, model = smollm
    # A 135M model leans to the first label listed; listed second, "positive" must be earned.
    template = PromptTemplate("Is the sentiment of this review positive or negative?", ("negative", "positive"))
    scorer = LabelScorer(model, tokenizer, template)

    predictions = scorer.predict([text for text, _ in REVIEWS], batch_size=6)
    # The shortest and the longest review alone: the most and the least left padding in the batch.
    by_length = sorted(range(len(REVIEWS)), key=lambda i: len(REVIEWS[i][0]))
    alone = [by_length[0], by_length[-1]]
    one_by_one = scorer.predict([REVIEWS[i][0] for i in alone], batch_size=1)

    right = sum(p.label == gold for p, (_, gold) in zip(predictions, REVIEWS))
    assert right >= 5, [(p.label, round(p.probability, 3)) for p in predictions]
    positive = [p.distribution["positive"] for p in predictions]
    assert min(positive[:3]) > max(positive[3:])  # every happy review ranks above every unhappy one
    for i, b in zip(alone, one_by_one):
        assert predictions[i].distribution["positive"] == pytest.approx(b.distribution["positive"], abs=1e-4)
    for a in predictions:
        assert a.distribution["positive"] + a.distribution["negative"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_real_smollm_shared_prefix_labels_match_brute_force(smollm):
    tokenizer, model = smollm
    scorer = LabelScorer(model, tokenizer, PromptTemplate("Route the billing ticket.", SHARED_PREFIX_LABELS))
    sequences = label_token_ids(tokenizer, SHARED_PREFIX_LABELS)
    prompts = [scorer.prompt_ids(text) for text in ("I was charged twice, this is wrong", "refund please")]

    rows = scorer.label_log_probs(prompts).tolist()  # shared system prompt, tails, label tree

    for row, prompt in zip(rows, prompts):
        expected = brute_force_log_probs(model, prompt, sequences)
        assert row == pytest.approx([expected[label] for label in SHARED_PREFIX_LABELS], abs=1e-4)
