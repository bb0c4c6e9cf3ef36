#!/usr/bin/env python3
"""Fine-tuning's best shot on all of Banking77, on the CPU: what each base model and method
reaches, and in how many minutes, beside the classical and embedding baselines.

Data: Banking77's train.csv (10,003 queries, 77 intents, CC-BY-4.0, Casanueva et al. 2020),
read in place: a stratified 20% is held out as test (``--split-seed``, default 0), and 10% of
the rest is validation (where every candidate is judged and the sweep's checks stop early); the
rest (about 7,200 rows) is train, all of it. Then, in-process through ``optimizer.cli.app``:

    roitune baseline -c roitune.yaml --only classical,embedding
    roitune sweep    -c roitune.yaml     # the known-good first trials of the space below
    roitune report   -c roitune.yaml --json

Space: ``--models`` (default minilm-l6) x ``--methods`` (default full) with a classifier head,
at the search space's default ranges, so the sweep's own known-good first trials
(``optimizer/starts.py``; for MiniLM full fine-tuning two settings, the first with a zero head, the
second with a probed one) run; ``--head-init`` fixes one head init for both; ``--trials`` (default 2),
``--trial-seconds`` of training per trial (default 1200), early stopping with patience 3 over 2
checks per epoch; ``--minutes`` caps the whole sweep.

Run: .venv/bin/python bench/finetune_banking77.py [--models minilm-l6,smollm2-135m-instruct] [--small]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import BANKING77, BANKING77_CITATION, LoadSampler, load_banking77, log, parser, setup, write_result
from sweep_banking77 import run_study, write_csv


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--models", default="minilm-l6")
    p.add_argument("--methods", default="full")
    p.add_argument("--trials", type=int, default=2)
    p.add_argument("--trial-seconds", type=float, default=1200)
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--cooldown-checks", type=int, default=0, help="search.cooldown_checks (decay after patience)")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the held-out test split (0: the one every Banking77 bench uses)")
    p.add_argument("--head-init", choices=["zero", "probe"], default=None,
                   help="one search.head_init for every trial (default: the config's, zero and probe)")
    args = p.parse_args()
    info = setup(args.threads)
    import yaml

    from evals.data import stratified_split
    from optimizer.config import demo_config_text

    examples, _ = load_banking77()
    if args.small:
        examples = [e for e in examples if e.label in sorted({x.label for x in examples})[:8]]
        args.trial_seconds = 20
    rest, test = stratified_split(examples, [0.2], seed=args.split_seed)
    train, validation = stratified_split(rest, [0.1], seed=1)
    work = Path(tempfile.mkdtemp(prefix="roitune-bench-b77-full-"))
    for name, part in {"train": train, "validation": validation, "test": test}.items():
        write_csv(work / f"{name}.csv", part)
    models, methods = args.models.split(","), args.methods.split(",")
    cfg = yaml.safe_load(demo_config_text())
    cfg["data"] = {"train": "train.csv", "validation": "validation.csv", "test": "test.csv",
                   "text_field": "text", "label_field": "category"}
    cfg["baselines"].update({"run": ["classical", "embedding"]})
    cfg["search"].update({"trials": args.trials, "base_models": models, "methods": methods, "heads": ["classifier"],
                          "batch_size": [16, 32], "trial_timeout_s": args.trial_seconds,
                          "timeout_s": args.minutes * 60, "pruner": "none", "cooldown_checks": args.cooldown_checks})
    if args.head_init:
        cfg["search"]["head_init"] = args.head_init
    cfg["budget"] = {"max_dollars": None}
    cfg.update({"storage": f"sqlite:///{work / 'study.db'}", "study": "banking77", "runs_dir": str(work / "runs")})
    config = work / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    log(f"Banking77: {len(train)} train / {len(validation)} validation / {len(test)} test in {work}")

    load = LoadSampler()
    run = run_study(config, cfg["storage"], "banking77", "classical,embedding", load,
                    title=f"Banking77, all 77 intents: {len(train)} train / {len(validation)} validation / "
                          f"{len(test)} test; {args.threads} torch thread(s); ranked by monthly cost")
    info["load_average_during"] = load.summary()
    name = "finetune_banking77" + (f"-head-{args.head_init}" if args.head_init else "")
    write_result(name + (f"-split{args.split_seed}" if args.split_seed else ""), {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "split_seed": args.split_seed,
                                  "train": len(train), "validation": len(validation), "test": len(test)},
        "config": cfg, "commands": {k: "roitune " + " ".join(v) for k, v in run.commands.items()},
        "wall_seconds": run.walls, "recommendation": run.report["recommendation"], "candidates": run.candidates,
        "failed_trials": run.failed, "table": run.table}, args.small)


if __name__ == "__main__":
    main()
