"""Supervised fine-tuning of a LoRA adapter on the chat format (``lora`` and ``qlora``).

The model learns to answer the prompt with the label and end-of-turn; the loss is the
cross-entropy of those answer tokens only (the prompt is context, not a target).
"""

from __future__ import annotations

from typing import Callable, Sequence

from optimizer.recipes.answers import AnswerRow, answer_token_log_probs, collate, length_buckets
from optimizer.recipes.loop import TrainStats, train


def train_sft(
    model,
    rows: Sequence[AnswerRow],
    *,
    pad_id: int,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    seed: int,
    evals_per_epoch: int = 1,
    on_eval: Callable[[int], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainStats:
    import torch

    generator = torch.Generator().manual_seed(seed)
    lengths = [len(r.prompt) + len(r.answer) for r in rows]
    device = next(model.parameters()).device

    def batches(epoch: int):
        return [[rows[i] for i in batch] for batch in length_buckets(len(rows), lengths, batch_size, generator)]

    def loss_of(batch):
        tensors = collate(batch, pad_id, device)
        picked = answer_token_log_probs(model, tensors)
        return -picked.sum() / tensors.target_mask.sum(), tensors.tokens

    return train(model, batches, loss_of, learning_rate=learning_rate, epochs=epochs,
                 evals_per_epoch=evals_per_epoch, on_eval=on_eval, on_step=on_step)
