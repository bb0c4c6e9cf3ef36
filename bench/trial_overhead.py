#!/usr/bin/env python3
"""Per-trial overhead of a real ``roitune sweep`` on CPU: how much of a trial is not training or scoring.

Runs ``roitune sweep`` in-process (``optimizer.cli.app`` through typer's CliRunner) with the demo
config (``optimizer.config.demo_config_text``: the bundled tickets and its default space, whose
first two trials are the known-good starts: MiniLM full fine-tune, then SmolLM2-135M LoRA r16 with
a classifier head; two validation checks an epoch) and

    --set data.max_train_rows=120 --set search.max_eval_items=40 --set search.trials=2
    --set search.pruner=none

with the study (SQLite) and adapters in a temporary folder. From each trial's record
(``evals.record.read_record``): ``details["timings"]`` (train = optimizer steps, eval =
validation scoring incl. the pruning check, overhead = the rest) and ``compute_seconds`` (the
trial's wall time; a pruned trial records no ``timings``, hence ``pruner=none``); overhead share =
overhead / wall (target < 10%). A trial on the same base model as the one before reuses it
(``optimizer.trial.Workbench``). Bench-side wrappers (timing only, no behaviour change) split the
overhead into model / tokenizer loading, LoRA wrapping, tokenising the rows, saving the adapter
and releasing it, and time the finalist's test scoring that follows the trials.

Run: .venv/bin/python bench/trial_overhead.py [--small]
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _common import ROOT, LoadSampler, log, parser, setup, table, write_result

PARTS: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
CURRENT = {"trial": -1}


def timed(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            PARTS[CURRENT["trial"]][name] += time.perf_counter() - began
    return wrapper


def instrument() -> None:
    import peft

    import optimizer.recipes.answers as answers
    import optimizer.sweep as sweep
    import optimizer.trial as trial

    trial.load_causal_lm = timed("load base model", trial.load_causal_lm)
    trial.load_tokenizer = timed("load tokenizer", trial.load_tokenizer)
    peft.get_peft_model = timed("wrap with LoRA (get_peft_model)", peft.get_peft_model)
    answers.answer_rows = timed("tokenise train rows (answer_rows)", answers.answer_rows)
    trial.TrialRun._save = timed("save adapter", trial.TrialRun._save)
    # inside "eval" (not overhead): the predictions and the bootstrap scoring, apart
    trial.metered = timed("eval: predict (metered)", trial.metered)
    trial.score = timed("eval: score (bootstrap CIs)", trial.score)
    trial.TrialRun._release = timed("unload adapter + gc", trial.TrialRun._release)
    original_run = trial.TrialRun.run

    def run(self):
        CURRENT["trial"] = self.trial.number
        try:
            return original_run(self)
        finally:
            CURRENT["trial"] = -1

    trial.TrialRun.run = run
    sweep.score_finalists = timed("finalist test scoring (after the trials)", sweep.score_finalists)


def trial_rows(study) -> tuple[list, list[list[str]], list[dict]]:
    """The sweep's trial records, their table rows and their JSON entries (with the bench-side
    timers of ``PARTS``)."""
    from dataclasses import asdict

    from evals.record import read_record, sweep_trials

    trials = sorted((read_record(study, t) for t in sweep_trials(study)), key=lambda r: r.number)
    rows, payload = [], []
    for t in trials:
        timings, wall_t = t.details.get("timings", {}), t.compute_seconds
        share = timings.get("overhead", 0) / wall_t if wall_t else None
        parts = {k: round(v, 3) for k, v in PARTS.get(t.number, {}).items()}
        payload.append({"number": t.number, "state": t.state, "name": t.name, "timings": timings,
                        "compute_seconds": wall_t, "overhead_share": share,
                        "training": asdict(t.training) if t.training else None,
                        "validation_accuracy": t.validation.accuracy if t.validation else None,
                        "items_per_second": t.items_per_second, "overhead_parts": parts,
                        "fail_reason": t.fail_reason})
        has = bool(timings)
        rows.append([t.number, t.state, t.name, f"{wall_t:.1f}" if wall_t else "-",
                     f"{timings['train']:.1f}" if has else "-", f"{timings['eval']:.1f}" if has else "-",
                     f"{timings['overhead']:.1f}" if has else "-",
                     f"{100 * share:.1f}%" if has and share is not None else "-",
                     f"{t.training.tokens_per_second:.0f}" if t.training else "-"])
    return trials, rows, payload


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--train-rows", type=int, default=120)
    p.add_argument("--eval-items", type=int, default=40)
    args = p.parse_args()
    info = setup(args.threads)
    from typer.testing import CliRunner

    from evals.storage import load_existing_study
    from optimizer.cli import app
    from optimizer.config import demo_config_text

    instrument()
    rows_n, eval_n = (32, 8) if args.small else (args.train_rows, args.eval_items)
    work = Path(tempfile.mkdtemp(prefix="roitune-bench-overhead-"))
    config = work / "roitune.yaml"
    config.write_text(demo_config_text())
    storage = f"sqlite:///{work / 'study.db'}"
    # pruner=none: the demo's hyperband pruner may prune the second trial at its only check (the
    # end of its one epoch), and a pruned trial records no `timings` (measured: trial 1 PRUNED in
    # the first full run), so there would be nothing to compare.
    flags = [f"data.max_train_rows={rows_n}", f"search.max_eval_items={eval_n}", "search.trials=2",
             "search.pruner=none", f"runs_dir={work / 'runs'}"]
    argv = ["sweep", "-c", str(config), "--storage", storage, "--study", "overhead"]
    for flag in flags:
        argv += ["--set", flag]
    load = LoadSampler()
    log("roitune " + " ".join(argv))
    began = time.perf_counter()
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    wall = time.perf_counter() - began
    load.sample()
    if result.exit_code != 0:
        print(result.output)
        raise SystemExit(f"sweep failed with exit code {result.exit_code}")

    study = load_existing_study(storage, "overhead")
    trials, rows, payload = trial_rows(study)
    text = table(["trial", "state", "settings", "wall s (compute_seconds)", "train s", "eval s", "overhead s",
                  "overhead / wall", "train tokens/s"], rows,
                 title=f"roitune sweep, 2 trials, {rows_n} train rows, {eval_n} validation items, "
                       f"{args.threads} torch thread(s) (absolute seconds are noisy; shares are per trial)")
    part_names = sorted({k for d in PARTS.values() for k in d})
    part_rows = [[name] + [f"{PARTS.get(t.number, {}).get(name, 0.0):.2f}" for t in trials] for name in part_names
                 if name != "finalist test scoring (after the trials)"]
    parts_text = table(["part (bench-side timers; eval: rows are inside eval, the rest inside overhead)"] + [f"trial {t.number} s" for t in trials], part_rows,
                       title="Where the overhead goes")
    after = PARTS[-1].get("finalist test scoring (after the trials)", 0.0)
    trial_walls = sum(x["compute_seconds"] or 0 for x in payload)
    print(f"\nsweep command wall {wall:.1f}s: trials {trial_walls:.1f}s, finalist test scoring {after:.1f}s, "
          f"the rest (config, data, study, imports) {wall - trial_walls - after:.1f}s")
    if len(payload) == 2 and all(x["compute_seconds"] for x in payload):
        first, second = payload
        print(f"first trial overhead {first['timings'].get('overhead', 0):.1f}s vs second "
              f"{second['timings'].get('overhead', 0):.1f}s")
    info["load_average_during"] = load.summary()
    write_result("trial_overhead", {"machine": info, "sweep_command": "roitune " + " ".join(argv), "train_rows": rows_n,
                                    "eval_items": eval_n, "sweep_wall_seconds": wall,
                                    "finalist_scoring_seconds": after, "trials": payload, "table": text,
                                    "parts_table": parts_text, "cli_output_tail": result.output[-2000:]}, args.small)


if __name__ == "__main__":
    main()
