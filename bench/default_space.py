#!/usr/bin/env python3
"""Does any recipe of the default search space collapse? A sweep of the demo config, unchanged, on
the demo tickets: every trial must end at least 20 points above chance on validation, or fail with
its reason (a trial that never leaves chance level is failed by the loop: ``StuckAtChance``).

Data: the project's demo tickets (``datasets/tickets``: 40 categories, all 1,023 train rows).
Config: ``roitune init``'s demo config as it is, except ``--trials`` (default 6: the sweep's
known-good first trials, then what its sampler draws from the default ranges) and its own storage.
Then, in-process through ``optimizer.cli.app``:

    roitune baseline -c roitune.yaml --only classical
    roitune sweep    -c roitune.yaml --set search.trials=N
    roitune report   -c roitune.yaml --json

Run: .venv/bin/python bench/default_space.py [--trials 6] [--small]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import LoadSampler, log, parser, setup, write_result
from sweep_banking77 import run_study

MARGIN = 0.20  # points above chance a finished trial must reach


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=6)
    args = p.parse_args()
    info = setup(args.threads)
    import yaml

    from evals.data import load_examples
    from optimizer.config import demo_config_text, demo_data_dir

    cfg = yaml.safe_load(demo_config_text())
    work = Path(tempfile.mkdtemp(prefix="roitune-bench-space-"))
    cfg["search"]["trials"] = args.trials
    if args.small:
        cfg["search"].update({"trials": 2, "trial_timeout_s": 20})
    cfg.update({"storage": f"sqlite:///{work / 'study.db'}", "study": "space", "runs_dir": str(work / "runs")})
    config = work / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    labels = len({e.label for e in load_examples(demo_data_dir() / "train.jsonl")})
    chance = 1 / labels
    log(f"demo tickets, {labels} labels (chance {chance:.1%}); {cfg['search']['trials']} trials in {work}")

    load = LoadSampler()
    run = run_study(config, cfg["storage"], "space", "classical", load,
                    title=f"The demo config's search space on the demo tickets: {cfg['search']['trials']} trials")
    trials = [c for c in run.candidates if c["kind"] == "trial"]
    verdicts = [{"trial": c["label"], "validation_accuracy": c["accuracy"], "n": c["n"],
                 "above_chance_points": round(100 * (c["accuracy"] - chance), 1),
                 "stop_reason": (c["training"] or {}).get("stop_reason"),
                 "ok": c["accuracy"] >= chance + MARGIN} for c in trials]
    failed_with_reason = [f for f in run.failed if f["fail_reason"]]
    every_trial_ok = all(v["ok"] for v in verdicts) and len(failed_with_reason) == len(run.failed)
    for v in verdicts:
        print(f"{v['trial']}: {v['validation_accuracy']:.1%} on {v['n']} validation items, "
              f"{v['above_chance_points']:+.1f} points above chance: {'ok' if v['ok'] else 'BELOW the margin'}")
    for f in run.failed:
        print(f"trial {f['number']} {f['state']}: {f['fail_reason'] or 'NO REASON'}")
    print("target (every trial >= chance + 20 points, or failed with its reason): "
          + ("met" if every_trial_ok else "NOT met"))
    info["load_average_during"] = load.summary()
    write_result("default_space", {
        "machine": info, "labels": labels, "chance": chance, "margin": MARGIN, "config": cfg,
        "commands": {k: "roitune " + " ".join(v) for k, v in run.commands.items()}, "wall_seconds": run.walls,
        "trials": verdicts, "failed_trials": run.failed, "target_met": every_trial_ok,
        "recommendation": run.report["recommendation"], "table": run.table}, args.small)


if __name__ == "__main__":
    main()
