"""DPO on top of an SFT adapter, without a separate reference model.

The reference log-probabilities are those of the SFT adapter itself, computed once before DPO
starts (one forward per pair), so no second copy of the model is held in memory. Pairs come
from the user's preference file or are mined from the SFT model's own mistakes on train:
chosen = the gold label, rejected = the label the model wrongly gave (or, for items it got
right, its most probable wrong label: the confusions it is closest to making).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from optimizer.recipes import sft
from optimizer.recipes.answers import AnswerRow, answer_token_log_probs, collate, length_buckets
from optimizer.recipes.common import Job, Trained
from optimizer.recipes.loop import Schedule, TrainStats, train


def run(job: Job, base_model, tokenizer, template, preferences: Sequence[tuple[str, str, str]] | None) -> Trained:
    """SFT (the ``sft`` recipe, early stopping and all), then DPO on pairs from the user's file
    (``preferences``: (text, chosen, rejected)) or mined from the SFT model's own mistakes."""
    from evals.accelerator import training_batch_size
    from evals.classify import label_token_ids

    s = job.settings
    if s.dpo_pairs == "file" and preferences is None:
        raise ValueError("dpo_pairs 'file' needs data.preferences")
    trained = sft.run(job, base_model, tokenizer, template)
    predictor = trained.predictor
    triples = preferences if s.dpo_pairs == "file" else mine_pairs(predictor, job.train)
    answers = label_token_ids(tokenizer, job.labels)
    pairs = [(AnswerRow(predictor.prompt_ids(text), answers[chosen]),
              AnswerRow(predictor.prompt_ids(text), answers[rejected])) for text, chosen, rejected in triples]
    # Chosen and rejected rows share a forward: memory is for twice the pairs (CUDA only).
    longest = max((len(c.prompt) + len(c.answer) for c, _ in pairs), default=1)
    batch = max(1, training_batch_size(trained.model, longest, 2 * s.batch_size) // 2)
    per_epoch = -(-len(pairs) // batch)
    # DPO's preference loss starts at ln 2 and need not fall far: no early stop, no chance check.
    # The trial's time budget covers both stages: DPO gets what SFT left.
    schedule = job.schedule(learning_rate=job.search.dpo_learning_rate, epochs=job.search.dpo_epochs, checks=False)
    if schedule.time_budget_s is not None:
        schedule = replace(schedule, time_budget_s=max(1.0, schedule.time_budget_s - trained.stats.seconds))
    stats = train_dpo(trained.model, pairs, pad_id=tokenizer.pad_token_id, beta=s.dpo_beta,
                      batch_size=batch, seed=job.seed, schedule=schedule,
                      on_step=job.step_hook("dpo", per_epoch * schedule.epochs))
    sft_stats = trained.stats
    stats.steps += sft_stats.steps
    stats.tokens += sft_stats.tokens
    stats.seconds += sft_stats.seconds
    stats.planned_steps += sft_stats.planned_steps  # the two schedules, one after the other
    stats.losses = sft_stats.losses + stats.losses
    # The SFT checks are kept for the record, but DPO moved the weights after them: no check
    # scored what is kept (best_check None), so the trial scores the final weights itself.
    stats.checks, stats.best_check = sft_stats.checks, None
    stats.stop_reason = f"SFT: {sft_stats.stop_reason}; DPO: {stats.stop_reason}"
    return Trained(trained.model, predictor, stats, {"dpo_pairs_used": len(pairs)})


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
    batch_size: int,
    seed: int,
    schedule: Schedule,
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

    return train(model, batches, loss_of, schedule, on_step=on_step)
