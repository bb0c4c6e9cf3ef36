"""Prompt + answer batches, and log-probabilities of the answer tokens only.

Shared by the SFT and DPO recipes. Rows are left-padded, so every answer ends in the last
column and only the last few positions need logits: the model runs with ``logits_to_keep``
and never projects the prompt positions onto the full vocabulary (for a 135M model that
projection is a fifth of the compute; on a GPU it is most of the memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class AnswerRow:
    prompt: list[int]
    answer: list[int]  # label tokens + end-of-turn


@dataclass
class AnswerBatch:
    ids: torch.Tensor  # (B, W) left-padded prompt+answer
    mask: torch.Tensor
    positions: torch.Tensor
    target_mask: torch.Tensor  # (B, K-1): which of the last K-1 tokens are answer tokens
    keep: int  # K: logits kept at the last K positions

    @property
    def tokens(self) -> int:
        return int(self.mask.sum())


def collate(rows: Sequence[AnswerRow], pad_id: int, device) -> AnswerBatch:
    import torch

    width = max(len(r.prompt) + len(r.answer) for r in rows)
    keep = max(len(r.answer) for r in rows) + 1  # +1: the position before the first answer token
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    target_mask = torch.zeros((len(rows), keep - 1), dtype=torch.bool)
    for i, row in enumerate(rows):
        sequence = row.prompt + row.answer
        ids[i, width - len(sequence):] = torch.tensor(sequence)
        mask[i, width - len(sequence):] = 1
        target_mask[i, keep - 1 - len(row.answer):] = True
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return AnswerBatch(ids.to(device), mask.to(device), positions.to(device), target_mask.to(device), keep)


def answer_token_log_probs(model, batch: AnswerBatch) -> torch.Tensor:
    """(B, K-1) log-probabilities of the answer tokens (zero where not an answer token)."""
    logits = model(input_ids=batch.ids, attention_mask=batch.mask, position_ids=batch.positions,
                   logits_to_keep=batch.keep, use_cache=False).logits
    # Logits at position t predict token t+1: the last kept position predicts nothing.
    log_probs = logits[:, :-1, :].float().log_softmax(-1)
    targets = batch.ids[:, -(batch.keep - 1):]
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked * batch.target_mask


def answer_rows(scorer, examples, labels_of=lambda e: e.label) -> list[AnswerRow]:
    """Rows for ``examples`` with the scorer's prompt and its label tokens as the answer."""
    from evals.classify import label_token_ids

    answers = label_token_ids(scorer.tokenizer, scorer.labels)
    return [AnswerRow(scorer.prompt_ids(e.text), answers[labels_of(e)]) for e in examples]


def length_buckets(count: int, lengths: Sequence[int], batch_size: int, generator) -> list[list[int]]:
    """Shuffled batches of similar length: shuffle, sort within windows of 16 batches, shuffle
    the batches. Less padding than plain shuffling, nearly as random."""
    import torch

    order = torch.randperm(count, generator=generator).tolist()
    window = batch_size * 16
    batches = []
    for start in range(0, count, window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
