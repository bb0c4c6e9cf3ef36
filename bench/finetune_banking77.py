#!/usr/bin/env python3
"""Fine-tuning's best shot on all of Banking77, on the CPU: what each base model and method
reaches, and in how many minutes, beside the classical and embedding baselines.

Data: Banking77's train.csv (10,003 queries, 77 intents, CC-BY-4.0, Casanueva et al. 2020),
read in place: a stratified 20% is held out as test, and 10% of the rest is validation (where
every candidate is judged and the sweep's checks stop early); the rest (about 7,200 rows) is
train, all of it. Then, in-process through ``optimizer.cli.app``:

    roitune baseline -c roitune.yaml --only classical,embedding
    roitune sweep    -c roitune.yaml     # the known-good first trials of the space below
    roitune report   -c roitune.yaml --json

Space: ``--models`` (default minilm-l6) x ``--methods`` (default full) with a classifier head,
at the search space's default ranges, so the sweep's own known-good first trials
(``optimizer/starts.py``) run; ``--trial-seconds`` of training per trial (default 1200),
early stopping with patience 3 over 2 checks per epoch; ``--minutes`` caps the whole sweep.

Run: .venv/bin/python bench/finetune_banking77.py [--models minilm-l6,smollm2-135m-instruct] [--small]
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from _common import (BANKING77, BANKING77_CITATION, LoadSampler, load_banking77, log, parser, run_commands, setup, table,
                     write_result)
from sweep_banking77 import last_json, summarise, write_csv


def stratified_split(examples, share: float, rng: random.Random) -> tuple[list, list]:
    """(the rest, a stratified ``share`` of each label), both shuffled."""
    by_label: dict[str, list] = {}
    for e in examples:
        by_label.setdefault(e.label, []).append(e)
    rest, held = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        cut = round(len(group) * share)
        held += group[:cut]
        rest += group[cut:]
    rng.shuffle(rest)
    rng.shuffle(held)
    return rest, held


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--models", default="minilm-l6")
    p.add_argument("--methods", default="full")
    p.add_argument("--trial-seconds", type=float, default=1200)
    p.add_argument("--minutes", type=float, default=60)
    args = p.parse_args()
    info = setup(args.threads)
    import yaml

    from evals.storage import load_existing_study
    from optimizer.config import demo_config_text

    examples, _ = load_banking77()
    rng = random.Random(0)
    if args.small:
        examples = [e for e in examples if e.label in sorted({x.label for x in examples})[:8]]
        args.trial_seconds = 20
    rest, test = stratified_split(examples, 0.2, rng)
    train, validation = stratified_split(rest, 0.1, rng)
    work = Path(tempfile.mkdtemp(prefix="roitune-bench-b77-full-"))
    for name, part in {"train": train, "validation": validation, "test": test}.items():
        write_csv(work / f"{name}.csv", part)
    models, methods = args.models.split(","), args.methods.split(",")
    cfg = yaml.safe_load(demo_config_text())
    cfg["data"] = {"train": "train.csv", "validation": "validation.csv", "test": "test.csv",
                   "text_field": "text", "label_field": "category"}
    cfg["baselines"].update({"run": ["classical", "embedding"]})
    trials = len(models) * len(methods)
    cfg["search"].update({"trials": trials, "base_models": models, "methods": methods, "heads": ["classifier"],
                          "batch_size": [16, 32], "trial_timeout_s": args.trial_seconds,
                          "timeout_s": args.minutes * 60, "pruner": "none"})
    cfg["budget"] = {"max_dollars": None}
    cfg.update({"storage": f"sqlite:///{work / 'study.db'}", "study": "banking77", "runs_dir": str(work / "runs")})
    config = work / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    log(f"Banking77: {len(train)} train / {len(validation)} validation / {len(test)} test in {work}")

    load = LoadSampler()
    commands = {"baseline": ["baseline", "-c", str(config), "--only", "classical,embedding", "--json"],
                "sweep": ["sweep", "-c", str(config), "--json"],
                "report": ["report", "-c", str(config), "--json"]}
    outputs, walls = run_commands(commands, load)
    report = last_json(outputs["report"])
    rows, candidates, failed = summarise(load_existing_study(cfg["storage"], "banking77"), report)
    text = table(["candidate", "kind", "n (validation)", "validation accuracy", "95% CI", "vs current", "n (test)",
                  "test accuracy", "95% CI", "$/item (cpu-2core)", "items/s (noisy)", "monthly cost", "compute s"],
                 rows, title=f"Banking77, all 77 intents: {len(train)} train / {len(validation)} validation / "
                             f"{len(test)} test; {args.threads} torch thread(s); ranked by monthly cost")
    print("\nrecommendation: " + report["recommendation"]["sentence"])
    if failed:
        print(f"failed/pruned trials: {failed}")
    print("wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in walls.items()))
    info["load_average_during"] = load.summary()
    write_result("finetune_banking77", {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "train": len(train),
                                  "validation": len(validation), "test": len(test)},
        "config": cfg, "commands": {k: "roitune " + " ".join(v) for k, v in commands.items()},
        "wall_seconds": walls, "recommendation": report["recommendation"], "candidates": candidates,
        "failed_trials": failed, "table": text}, args.small)


if __name__ == "__main__":
    main()
