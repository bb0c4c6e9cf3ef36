#!/usr/bin/env python3
"""A CPU sweep on a Banking77 subset, with the classical and zero-shot baselines in the same study.

Data: Banking77's train.csv (CC-BY-4.0, Casanueva et al. 2020), read in place. A seeded random
``--classes`` intents (default 10) and, per intent, ``--train-per-class`` (default 20) train,
``--val-per-class`` (6) validation and ``--test-per-class`` (10) test queries, disjoint, written
as three CSV files (columns ``text``, ``category``) into a temporary folder with a generated
``roitune.yaml`` (``data.text_field: text``, ``data.label_field: category``; the economics of the
demo config: 5M items/month, current solution $2,500/month at 10% errors, $0.05 per error,
cpu-2core serving). Then, in-process through ``optimizer.cli.app``:

    roitune baseline -c roitune.yaml --only classical,zero-shot
    roitune sweep    -c roitune.yaml          # --trials (default 2) trials, --epochs (default 1) each
    roitune report   -c roitune.yaml --json   # the ranking and the recommendation sentence

Every candidate is judged and ranked on validation (the report's decision split); the test
accuracy of the baselines and the sweep's finalist is reported beside it. The compute seconds and
training summary of each candidate come from its ``CandidateRecord`` in the study.

Sweep space: the demo config's (MiniLM and SmolLM2; full and LoRA r16; classifier and generative
heads), so the trials are its known-good starts in order, held to ``--epochs`` epochs at batch 16,
no pruning, every validation item scored (one check per epoch). About 2 minutes on 2 cores.

Run: .venv/bin/python bench/sweep_banking77.py [--small] [--classes N] [--trials N]
"""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import (BANKING77, BANKING77_CITATION, LoadSampler, load_banking77, log, parser, run_commands, setup, table,
                     write_result)
from evals.formatting import interval, money, pct


def write_csv(path: Path, examples) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        for e in examples:
            writer.writerow([e.text, e.label])


def last_json(text: str):
    """The JSON document a command printed on stdout (progress lines precede it)."""
    return json.loads(text[text.find("{\n"):])


COLUMNS = ["candidate", "kind", "n (validation)", "validation accuracy", "95% CI", "vs current", "n (test)",
           "test accuracy", "95% CI", "$/item (cpu-2core)", "items/s (noisy)", "monthly cost", "compute s"]


@dataclass(frozen=True)
class StudyRun:
    """What ``baseline``, ``sweep`` and ``report`` did to one study: the commands, their outputs and
    wall seconds, the report, the candidates (completed from their records) and the table."""

    commands: dict[str, list[str]]
    walls: dict[str, float]
    report: dict
    candidates: list[dict]
    failed: list[dict]
    table: str


def run_study(config: Path, storage: str, study: str, baselines: str, load: LoadSampler, title: str) -> StudyRun:
    """Run the baselines, the sweep and the report on ``config`` in-process, then print the ranked
    table, the recommendation and the trials that did not finish."""
    from dataclasses import asdict

    from evals.record import Kind, records
    from evals.storage import load_existing_study

    commands = {"baseline": ["baseline", "-c", str(config), "--only", baselines, "--json"],
                "sweep": ["sweep", "-c", str(config), "--json"],
                "report": ["report", "-c", str(config), "--json"]}
    outputs, walls = run_commands(commands, load)
    report = last_json(outputs["report"])
    found = records(load_existing_study(storage, study))
    by_number = {r.number: r for r in found}
    rows, candidates = [], []
    for c in report["candidates"]:
        record = by_number[c["trial_number"]]
        test = c["test"] or {}
        rows.append([c["label"], c["kind"] + (" (hosted)" if c["hosted"] else ""), c["n"], pct(c["accuracy"]),
                     interval(c["accuracy_ci"]) or "-", c["standing"], test.get("n", "-"), pct(test.get("accuracy")),
                     interval(test.get("accuracy_ci")) or "-", money(c["cost_per_item"]),
                     f"{c['items_per_second']:.3g}" if c.get("items_per_second") else "-", money(c["monthly_cost"]),
                     f"{record.compute_seconds:.0f}"])
        candidates.append({**c, "compute_seconds": record.compute_seconds,
                           "training": asdict(record.training) if record.training else None})
    failed = [{"number": r.number, "state": r.state, "fail_reason": r.fail_reason}
              for r in found if r.kind == Kind.trial and r.state != "COMPLETE"]
    text = table(COLUMNS, rows, title=title)
    print("\nrecommendation: " + report["recommendation"]["sentence"])
    if failed:
        print(f"failed/pruned trials: {failed}")
    print("wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in walls.items()))
    return StudyRun(commands, walls, report, candidates, failed, text)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--train-per-class", type=int, default=20)
    p.add_argument("--val-per-class", type=int, default=6)
    p.add_argument("--test-per-class", type=int, default=10)
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    info = setup(args.threads)
    import random

    import yaml

    from optimizer.config import demo_config_text

    if args.small:
        args.classes, args.train_per_class, args.val_per_class, args.test_per_class, args.trials = 4, 8, 2, 3, 1
    examples, labels = load_banking77()
    rng = random.Random(0)
    chosen = sorted(rng.sample(labels, args.classes))
    by_label = {label: [e for e in examples if e.label == label] for label in chosen}
    parts = {"train": [], "validation": [], "test": []}
    sizes = {"train": args.train_per_class, "validation": args.val_per_class, "test": args.test_per_class}
    for label in chosen:
        group = by_label[label][:]
        rng.shuffle(group)
        start = 0
        for name in ("train", "validation", "test"):
            parts[name] += group[start:start + sizes[name]]
            start += sizes[name]
    for part in parts.values():
        rng.shuffle(part)

    work = Path(tempfile.mkdtemp(prefix="roitune-bench-b77-"))
    for name, part in parts.items():
        write_csv(work / f"{name}.csv", part)
    cfg = yaml.safe_load(demo_config_text())
    cfg["data"] = {"train": "train.csv", "validation": "validation.csv", "test": "test.csv",
                   "text_field": "text", "label_field": "category"}
    cfg["baselines"].update({"run": ["classical", "zero-shot"], "max_llm_items": 50, "batch_size": 16})
    cfg["search"].update({"trials": args.trials, "rank": [16], "alpha_ratio": [2.0],
                          "learning_rate": {"low": 0.0005, "high": 0.002}, "epochs": [args.epochs],
                          "batch_size": [16], "evals_per_epoch": 1, "max_eval_items": None, "pruner": "none"})
    cfg["budget"] = {"max_dollars": None}
    cfg.update({"storage": f"sqlite:///{work / 'study.db'}", "study": "banking77", "runs_dir": str(work / "runs")})
    config = work / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    log(f"{args.classes} intents x {args.train_per_class}/{args.val_per_class}/{args.test_per_class} "
        f"train/validation/test in {work}")

    load = LoadSampler()
    run = run_study(config, cfg["storage"], "banking77", "classical,zero-shot", load,
                    title=f"Banking77 subset: {args.classes} intents, {len(parts['train'])} train / "
                          f"{len(parts['validation'])} validation / {len(parts['test'])} test; {args.trials} LoRA "
                          f"trial(s); {args.threads} torch thread(s); ranked by monthly cost (the report's order)")
    info["load_average_during"] = load.summary()
    write_result("sweep_banking77", {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "intents": chosen,
                                  "train": len(parts["train"]), "validation": len(parts["validation"]),
                                  "test": len(parts["test"])},
        "config": cfg, "commands": {k: "roitune " + " ".join(v) for k, v in run.commands.items()},
        "wall_seconds": run.walls, "recommendation": run.report["recommendation"], "candidates": run.candidates,
        "not_judged": run.report.get("not_judged"), "failed_trials": run.failed,
        "compute_dollars": run.report.get("compute_dollars"), "table": run.table}, args.small)


if __name__ == "__main__":
    main()
