"""A sequence-classification head + LoRA: one forward pass per item at serving time.

The head (``score``) is new and trained fully; the body gets LoRA adapters. The input is the
ticket text alone: the head needs no instruction or label list, which keeps items short.
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

    from optimizer.recipes.answers import length_buckets

    device = next(model.parameters()).device
    tokenizer.padding_side = "left"  # last-token pooling reads the final column
    encoded = tokenizer(list(texts), truncation=True, max_length=max_tokens, add_special_tokens=False)["input_ids"]
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(ids) for ids in encoded]

    def batches(epoch: int):
        return length_buckets(len(texts), lengths, batch_size, generator)

    def loss_of(indices):
        enc = tokenizer.pad({"input_ids": [encoded[i] for i in indices]}, return_tensors="pt").to(device)
        logits = model(**enc).logits.float()
        target = torch.tensor([label_ids[i] for i in indices], device=device)
        return torch.nn.functional.cross_entropy(logits, target), int(enc["attention_mask"].sum())

    return train(model, batches, loss_of, learning_rate=learning_rate, epochs=epochs,
                 evals_per_epoch=evals_per_epoch, on_eval=on_eval, on_step=on_step)
