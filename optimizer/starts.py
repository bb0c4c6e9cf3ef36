"""Known-good first trials: a study starts where good settings are, then the sampler explores.

A random first draw from a wide space often lands on a learning rate that starves or breaks a
method (on the demo tickets, MiniLM with a classifier head at 4e-3 never left chance level), and
a CPU sweep has room for a handful of trials. So before TPE samples anything, the sweep enqueues
one trial per (base model, head, method) the space allows, with the settings below, clamped to
the user's ranges and choices (a start whose head init the space does not offer takes the
space's first). Where they come from:

- encoder + classifier head, full fine-tuning: body 2e-4, head 2e-3, batch 16 first (more, larger
  steps: what a thousand rows need; on the demo tickets it matched the classical baseline,
  BENCHMARKS.md), then body 1e-4 at batch 32 with the head started from a linear probe (LP-FT,
  ``optimizer.recipes.probe``), for thousands of rows, where the first overfits (train loss 0.003
  on Banking77). On all of Banking77 (BENCHMARKS.md, "Fine-tuning's best shot") the probe lifted
  this second setting from 91.5% to 93.4% validation and cut the first from 92.1% to 90.5%, so
  each keeps the start it did best with, and a study that runs both has one of each;
- LoRA on a decoder: 1e-3 with rank 16 (the usual LoRA range, 1e-4..2e-3, upper half for a
  135M model whose answers are a few tokens); a new head 2e-3;
- full fine-tuning of a decoder: 1e-4 at batch 16, the top of the range where full fine-tunes of
  small LMs stay stable (they diverge above it; the loop fails a run that does). A CPU trial gets
  a few dozen steps: in 240 s on an AMD EPYC, SmolLM2 (generative head, demo tickets) reached 20%
  validation accuracy at 3e-5 and batch 32 (33 steps), 45% at 1e-4 and batch 16 (60 steps)
  (BENCHMARKS.md, "No recipe collapses").
"""

from __future__ import annotations

from typing import Any

from optimizer.space import Range, SearchSpec

# (encoder?, head, method) -> settings; the order is the order of the first trials: the
# cheapest strong candidates first, so a short sweep has them; second settings for a key come
# after every first one.
GOOD_SETTINGS: list[tuple[tuple[bool, str, str], dict[str, Any]]] = list({
    (True, "classifier", "full"): {"full_learning_rate": 2e-4, "head_learning_rate": 2e-3, "batch_size": 16},
    (False, "classifier", "lora"): {"learning_rate": 1e-3, "head_learning_rate": 2e-3, "rank": 16, "batch_size": 16},
    (False, "generative", "lora"): {"learning_rate": 1e-3, "rank": 16},
    (True, "classifier", "lora"): {"learning_rate": 2e-3, "head_learning_rate": 3e-3, "rank": 16, "batch_size": 32},
    (False, "classifier", "full"): {"full_learning_rate": 1e-4, "head_learning_rate": 2e-3, "batch_size": 16},
    (False, "generative", "full"): {"full_learning_rate": 1e-4, "batch_size": 16},
    (False, "classifier", "qlora"): {"learning_rate": 1e-3, "head_learning_rate": 2e-3, "rank": 16},
    (False, "generative", "qlora"): {"learning_rate": 1e-3, "rank": 16},
    (False, "generative", "dpo"): {"learning_rate": 1e-3, "rank": 16, "dpo_beta": 0.1},
    (True, "classifier", "qlora"): {"learning_rate": 2e-3, "head_learning_rate": 3e-3, "rank": 16, "batch_size": 32},
}.items()) + [
    ((True, "classifier", "full"), {"full_learning_rate": 1e-4, "head_learning_rate": 2e-3, "batch_size": 32,
                                      "head_init": "probe"}),
]
_RANGES = ("learning_rate", "full_learning_rate", "head_learning_rate", "dpo_beta")
_CHOICES = {"rank": "rank", "batch_size": "batch_size"}


def _clamp(value: float, span: Range) -> float:
    return min(max(value, span.low), span.high)


def _nearest(value: int, choices: list[int]) -> int:
    return min(choices, key=lambda c: (abs(c - value), c))


def _head_start(good: dict[str, Any], spec: SearchSpec) -> dict[str, Any]:
    """A classifier start's settings with a head init the space offers (its own, else the space's
    first); a probed head trains at the body's rate, so it has no rate of its own."""
    wanted = good.get("head_init", "zero")
    head_init = wanted if wanted in spec.head_init else spec.head_init[0]
    settings = {**good, "head_init": head_init}
    if head_init == "probe":
        settings.pop("head_learning_rate", None)
    return settings


def first_trials(spec: SearchSpec) -> list[dict[str, Any]]:
    """Optuna params of the known-good first trials the space allows, in order."""
    from evals.models import is_encoder

    found = []
    for (encoder, head, method), good in GOOD_SETTINGS:
        if method not in spec.methods or (head not in spec.heads and method != "dpo" and not encoder):
            continue
        for base in spec.base_models:
            if is_encoder(base) != encoder:
                continue
            params: dict[str, Any] = {"base_model": base, "method": method}
            if not encoder and method != "dpo":
                params["head"] = head
            settings = _head_start(good, spec) if head == "classifier" and method != "dpo" else good
            for name, value in settings.items():
                if name == "head_init":
                    params[name] = value
                elif name in _RANGES:
                    params[name] = _clamp(value, getattr(spec, name))
                else:
                    params[name] = _nearest(value, getattr(spec, _CHOICES[name]))
            if method == "full":
                params.pop("rank", None)
            if params not in found:  # two settings clamped into one
                found.append(params)
    return found


def enqueue_first_trials(study, spec: SearchSpec) -> int:
    """Enqueue the known-good first trials into a study that has no sweep trial yet; returns
    how many (a resumed study keeps what it has)."""
    from evals.record import sweep_trials

    if not spec.known_good_first or sweep_trials(study):
        return 0
    trials = first_trials(spec)[:spec.trials]
    for params in trials:
        study.enqueue_trial(params, skip_if_exists=True)
    return len(trials)
