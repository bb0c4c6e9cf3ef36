#!/usr/bin/env python3
"""bfloat16 autocast against float32 for the sweep's training step on this CPU: does the
``precision: auto`` rule (``evals.models.cpu_bf16_units``) pick the faster one here?

Arms, each a real recipe step (``optimizer.recipes.classifier.train_classifier``: forward,
backward, clipping, AdamW) on the demo tickets (``datasets/tickets``, 40 labels), batch 16,
192 tokens at most, over the models the default search space trains:

  smollm2-lora   SmolLM2-135M-Instruct, LoRA r16 on all linear layers, classifier head
  smollm2-full   SmolLM2-135M-Instruct, every weight trained, classifier head
  minilm-full    MiniLM-L6, every weight trained, classifier head

Each arm loads its model once; then float32 and bfloat16 alternate for ``--rounds`` rounds of
``--steps`` optimizer steps (the first step of each run is warm-up and not timed), so load
drift hits both alike. The ratio is float32 seconds per step / bfloat16 seconds per step
(above 1: bf16 is faster), from the medians of the timed steps.

Run: .venv/bin/python bench/precision.py [--small] [--threads 2] [--rounds 3] [--steps 4]
"""

from __future__ import annotations

import statistics
import time

from _common import LoadSampler, log, parser, setup, table, write_result

ARMS = {  # name: (base model, method)
    "smollm2-lora": ("smollm2-135m-instruct", "lora"),
    "smollm2-full": ("smollm2-135m-instruct", "full"),
    "minilm-full": ("minilm-l6", "full"),
}


def step_seconds(model, tokenizer, texts, label_ids, *, bf16: bool, steps: int) -> list[float]:
    """Seconds of each optimizer step after the first, under bf16 autocast or float32."""
    from optimizer.recipes.classifier import train_classifier
    from optimizer.recipes.loop import Schedule

    stamps: list[float] = []
    # A rate small enough that the weights barely move from round to round: this times steps,
    # it does not train.
    schedule = Schedule(learning_rate=1e-6, epochs=1, max_steps=steps, bf16=bf16, fail_if_stuck=False)
    train_classifier(model, tokenizer, texts, label_ids, batch_size=16, seed=0, max_tokens=192,
                     schedule=schedule, on_step=lambda step, loss: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=4, help="optimizer steps a run (the first is not timed)")
    args = p.parse_args()
    info = setup(args.threads)
    rounds, steps = (1, 3) if args.small else (args.rounds, args.steps)

    from evals.data import load_examples
    from evals.models import bf16_training, cpu_bf16_units, load_sequence_classifier, load_tokenizer
    from optimizer.config import demo_data_dir
    from optimizer.recipes.common import train_weights
    from optimizer.space import TrialSettings

    train = load_examples(demo_data_dir() / "train.jsonl")
    labels = sorted({e.label for e in train})
    index = {label: i for i, label in enumerate(labels)}
    texts, label_ids = [e.text for e in train], [index[e.label] for e in train]
    auto = "bfloat16" if bf16_training("auto", "cpu") else "float32"
    log(f"CPU bf16 units: {cpu_bf16_units() or 'none'}; precision auto picks {auto}")

    load = LoadSampler()
    arms: dict[str, dict] = {}
    for name, (base, method) in ARMS.items():
        tokenizer = load_tokenizer(base)
        model = load_sequence_classifier(base, labels)
        settings = TrialSettings(base_model=base, method=method, head="classifier", rank=16, alpha=32.0,
                                 dropout=0.0, learning_rate=1e-6, epochs=1, batch_size=16,
                                 target_modules="all-linear", head_learning_rate=1e-6)
        model = train_weights(model, settings, "SEQ_CLS")
        times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
        for r in range(rounds):
            load.sample()
            for precision in times:
                times[precision] += step_seconds(model, tokenizer, texts, label_ids,
                                                 bf16=precision == "bfloat16", steps=steps)
            log(f"{name} round {r + 1}/{rounds}: median s/step float32 "
                f"{statistics.median(times['float32']):.2f}, bfloat16 {statistics.median(times['bfloat16']):.2f}")
        medians = {k: statistics.median(v) for k, v in times.items()}
        arms[name] = {"base_model": base, "method": method, "seconds_per_step": times,
                      "median_seconds_per_step": medians,
                      "bf16_speedup": medians["float32"] / medians["bfloat16"]}
        del model

    faster = {name: "bfloat16" if a["bf16_speedup"] > 1 else "float32" for name, a in arms.items()}
    rows = [[name, f"{a['median_seconds_per_step']['float32']:.2f}", f"{a['median_seconds_per_step']['bfloat16']:.2f}",
             f"{a['bf16_speedup']:.2f}x", faster[name]] for name, a in arms.items()]
    table(["arm", "float32 s/step", "bfloat16 s/step", "bf16 speed-up", "faster"], rows,
          title=f"bf16 autocast vs float32, batch 16, {info['cpu']}")
    agrees = all(f == auto for f in faster.values())
    print(f"precision auto picks {auto}: {'the faster one' if agrees else 'NOT the faster one'} for every arm")
    write_result("precision", {"machine": {**info, "load_average_during": load.summary()},
                               "cpu_bf16_units": cpu_bf16_units(), "auto_picks_bf16": auto == "bfloat16",
                               "rounds": rounds, "steps": steps, "arms": arms, "auto_is_faster": agrees},
                 args.small)


if __name__ == "__main__":
    main()
