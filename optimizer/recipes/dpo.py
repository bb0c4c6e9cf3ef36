"""DPO on top of an SFT adapter, without a separate reference model.

The reference log-probabilities are those of the SFT adapter itself, computed once before DPO
starts (one forward per pair), so no second copy of the model is held in memory. Pairs come
from the user's preference file or are mined from the SFT model's own mistakes on train:
chosen = the gold label, rejected = the label the model wrongly gave (or, for items it got
right, its most probable wrong label: the confusions it is closest to making).
"""

from __future__ import annotations

from typing import Callable, Sequence

from optimizer.recipes.answers import AnswerRow, answer_token_log_probs, collate, length_buckets
from optimizer.recipes.loop import TrainStats, train


def mine_pairs(scorer, examples, *, max_pairs: int = 512) -> list[tuple[str, str, str]]:
    """(text, chosen, rejected) from the model's mistakes first, then its nearest confusions."""
    predictions = scorer.predict([e.text for e in examples])
    mistakes, close_calls = [], []
    for example, prediction in zip(examples, predictions):
        if prediction.label != example.label:
            mistakes.append((example.text, example.label, prediction.label))
        else:
            wrong = max((p, label) for label, p in prediction.distribution.items() if label != example.label)
            close_calls.append((wrong[0], (example.text, example.label, wrong[1])))
    close_calls.sort(key=lambda item: -item[0])
    return (mistakes + [pair for _, pair in close_calls])[:max_pairs]


def _sequence_log_probs(model, rows: Sequence[AnswerRow], pad_id: int, device):
    return answer_token_log_probs(model, collate(rows, pad_id, device)).sum(-1)


def train_dpo(
    model,
    pairs: Sequence[tuple[AnswerRow, AnswerRow]],  # (prompt + chosen, prompt + rejected)
    *,
    pad_id: int,
    beta: float,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainStats:
    import torch

    device = next(model.parameters()).device
    reference = torch.zeros((len(pairs), 2))
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            rows = [c for c, _ in chunk] + [r for _, r in chunk]
            logps = _sequence_log_probs(model, rows, pad_id, device).float().cpu()
            reference[start:start + len(chunk), 0] = logps[:len(chunk)]
            reference[start:start + len(chunk), 1] = logps[len(chunk):]
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(c.prompt) + len(c.answer) for c, _ in pairs]

    def batches(epoch: int):
        return length_buckets(len(pairs), lengths, batch_size, generator)

    def loss_of(indices):
        chunk = [pairs[i] for i in indices]
        tensors = collate([c for c, _ in chunk] + [r for _, r in chunk], pad_id, device)
        logps = answer_token_log_probs(model, tensors).sum(-1)
        ref = reference[indices].to(device)
        margin = (logps[:len(chunk)] - ref[:, 0]) - (logps[len(chunk):] - ref[:, 1])
        return -torch.nn.functional.logsigmoid(beta * margin).mean(), tensors.tokens

    return train(model, batches, loss_of, learning_rate=learning_rate, epochs=epochs, on_step=on_step)
