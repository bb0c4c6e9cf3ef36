"""A sequence-classification head + LoRA: one forward pass per item at serving time.

The head (``score``) is new and trained fully; the body gets LoRA adapters. The input is the
ticket text alone (the head needs no instruction or label list, which keeps items short),
encoded by ``evals.classify.head_inputs`` exactly as at serving time.
"""

from __future__ import annotations

from typing import Callable, Sequence

from optimizer.recipes.loop import TrainStats, train


def train_classifier(
    model,
    tokenizer,
    texts: Sequence[str],
    label_ids: Sequence[int],
    *,
    learning_rate: float,
    epochs: int,
    batch_size: int,
    seed: int,
    max_tokens: int,
    evals_per_epoch: int = 1,
    on_eval: Callable[[int], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainStats:
    import torch

    from evals.classify import head_inputs
    from optimizer.recipes.answers import length_buckets

    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]]

    def batches(epoch: int):
        return length_buckets(len(texts), lengths, batch_size, generator)

    def loss_of(indices):
        enc = head_inputs(model, tokenizer, [texts[i] for i in indices], max_tokens)
        logits = model(**enc).logits.float()
        target = torch.tensor([label_ids[i] for i in indices], device=device)
        return torch.nn.functional.cross_entropy(logits, target), int(enc["attention_mask"].sum())

    return train(model, batches, loss_of, learning_rate=learning_rate, epochs=epochs,
                 evals_per_epoch=evals_per_epoch, on_eval=on_eval, on_step=on_step)
