"""Supervised fine-tuning of the generative answer (``lora``, ``qlora``, ``full``).

The model learns to answer the prompt with the label and end-of-turn; the loss is the
cross-entropy of those answer tokens only (the prompt is context, not a target). It is scored
by label-constrained decoding (``evals.classify.LabelScorer``), as it will be served.
"""

from __future__ import annotations

from typing import Callable, Sequence

from optimizer.recipes.answers import AnswerRow, answer_rows, answer_token_log_probs, collate, length_buckets
from optimizer.recipes.common import Job, Trained
from optimizer.recipes.loop import Schedule, TrainStats, train


def run(job: Job, base_model, tokenizer, template) -> Trained:
    """Set up the weights for ``job.settings.method`` on ``base_model``, train, return."""
    import torch

    from evals.accelerator import training_batch_size
    from evals.classify import LabelScorer

    torch.manual_seed(job.seed)
    model = job.prepared(base_model, "CAUSAL_LM")
    predictor = LabelScorer(model, tokenizer, template, max_prompt_tokens=job.search.max_seq_tokens)
    rows = answer_rows(predictor, job.train)
    # On CUDA, memory may lower the searched batch size (never raise it); on a CPU it is as sampled.
    batch = training_batch_size(model, max(len(r.prompt) + len(r.answer) for r in rows), job.settings.batch_size)
    per_epoch = -(-len(rows) // batch)
    schedule = job.schedule()
    stats = train_sft(model, rows, pad_id=tokenizer.pad_token_id, batch_size=batch,
                      seed=job.seed, schedule=schedule,
                      on_eval=job.checker(predictor) if job.checker else None,
                      on_step=job.step_hook("sft", per_epoch * schedule.epochs))
    return Trained(model, predictor, stats, {})


def train_sft(
    model,
    rows: Sequence[AnswerRow],
    *,
    pad_id: int,
    batch_size: int,
    seed: int,
    schedule: Schedule,
    on_eval: Callable[[int], float] | None = None,
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

    return train(model, batches, loss_of, schedule, on_eval=on_eval, on_step=on_step)
