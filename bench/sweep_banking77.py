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
    roitune sweep    -c roitune.yaml          # --trials (default 2) LoRA trials, 1 epoch each
    roitune report   -c roitune.yaml --json   # the ranking and the recommendation sentence

Sweep space: SmolLM2-135M, LoRA r16 (alpha 32), all-linear, learning rate 5e-4..2e-3, 1 epoch,
batch 16, answer = the label (label list not in the prompt), no pruning; every validation item
scored (one check per epoch). The default size fits ~15 minutes on the shared 2-core CPU
(~25-40 s per training step of 16 rows there); ``--classes 20 --train-per-class 20`` is the
bigger variant (about twice as long).

Run: .venv/bin/python bench/sweep_banking77.py [--small] [--classes N] [--trials N]
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from _common import (BANKING77, BANKING77_CITATION, LoadSampler, ci, dollars, load_banking77, log, parser, pct,
                     run_commands, setup, table, write_result)


def write_csv(path: Path, examples) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        for e in examples:
            writer.writerow([e.text, e.label])


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
    commands = {"baseline": ["baseline", "-c", str(config), "--only", "classical,zero-shot", "--json"],
                "sweep": ["sweep", "-c", str(config), "--json"],
                "report": ["report", "-c", str(config), "--json"]}
    outputs, walls = run_commands(commands, load)

    def last_json(text: str):
        start = text.find("{\n")  # the JSON document printed on stdout (progress lines precede it)
        return json.loads(text[start:])

    report = last_json(outputs["report"])
    from evals.results import load_existing_study, sweep_trials

    study = load_existing_study(cfg["storage"], "banking77")
    trials = {t.number: t for t in sweep_trials(study)}
    rows, candidates = [], []
    for c in report["candidates"]:
        t = trials.get(c["trial_number"]) if c["kind"] == "trial" else None
        val = (t.user_attrs.get("validation_scores") or {}) if t else {}
        rows.append([c["name"], c["kind"], c.get("split") or "-", c.get("n") or "-", pct(c["accuracy"]),
                     ci(c["accuracy_ci"]), pct(val.get("accuracy")) if t else "-",
                     ci(val.get("accuracy_ci")) if t else "-", dollars(c["cost_per_item"]),
                     f"{c['items_per_second']:.3g}" if c.get("items_per_second") else "-",
                     f"${c['monthly_cost']:,.0f}", f"{t.user_attrs.get('train_seconds', 0):.0f}" if t else "-"])
        candidates.append({**c, "validation_accuracy": val.get("accuracy"), "validation_accuracy_ci": val.get("accuracy_ci"),
                           "train_seconds": t.user_attrs.get("train_seconds") if t else None,
                           "training": t.user_attrs.get("training") if t else None})
    failed = [{"number": t.number, "state": t.state.name, "fail_reason": t.user_attrs.get("fail_reason")}
              for t in trials.values() if t.state.name != "COMPLETE"]
    text = table(["candidate", "kind", "scored on", "n", "accuracy", "95% CI", "validation accuracy (trials)", "95% CI",
                  "$/item (cpu-2core)", "items/s (noisy)", "monthly cost", "trial wall s"], rows,
                 title=f"Banking77 subset: {args.classes} intents, {len(parts['train'])} train / "
                       f"{len(parts['validation'])} validation / {len(parts['test'])} test; {args.trials} LoRA trial(s); "
                       f"{args.threads} torch thread(s); ranked by monthly cost (the report's order)")
    sentence = report["recommendation"]["sentence"]
    print("\nrecommendation: " + sentence)
    if failed:
        print(f"failed/pruned trials: {failed}")
    print("wall seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in walls.items()))
    info["load_average_during"] = load.summary()
    write_result("sweep_banking77", {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "intents": chosen,
                                  "train": len(parts["train"]), "validation": len(parts["validation"]),
                                  "test": len(parts["test"])},
        "config": cfg, "commands": {k: "roitune " + " ".join(v) for k, v in commands.items()},
        "wall_seconds": walls, "recommendation": report["recommendation"], "candidates": candidates,
        "failed_trials": failed, "compute_dollars": report.get("compute_dollars"), "table": text}, args.small)


if __name__ == "__main__":
    main()
