#!/usr/bin/env python3
"""Distillation on Banking77: a teacher labels, a student learns from its labels, gold rows judge both.

Data: Banking77's train.csv (10,003 queries, 77 intents; CC-BY-4.0, Casanueva et al. 2020), read in
place. A stratified 20% (seed 0) is the gold set (human labels, ``data.gold``); of the rest, a
stratified quarter (seed 1) trains the teacher with its human labels and the other three quarters
are the unlabelled pool: the teacher stands for the current model, built once on few human labels,
the pool for the bulk of the traffic it routes. ``--small`` uses 30 queries per intent instead.

The teacher is a local candidate, trained, exported and served as a user would: a sweep of one
trial on its quarter (the known-good MiniLM full fine-tune with a classifier head, ``--teacher-seconds``
of training), ``roitune export`` of that trial, and the bundle behind ``optimizer.serve`` (the
classifier and server ``roitune serve BUNDLE`` runs, here in-process so the server's own meter counts
every call and token), reached by roitune's hosted client on 127.0.0.1 with Claude Haiku 4.5's list
prices entered ($1 / $5 per million input / output tokens; usage counted by the bundle's tokenizer).
The student is the classical baseline (cheap on CPU, so the learning curve's retrains fit; the
same recipe on other labels). Then, in-process through ``optimizer.cli.app``:

    roitune sweep  -c teacher/roitune.yaml --json                    # the teacher, on human labels
    roitune export -c teacher/roitune.yaml --trial best --out teacher/bundle
    roitune label first-1000.jsonl --out labelled-1000.jsonl -c roitune.yaml --json   # 1,000 texts
    roitune label first-1000.jsonl --out labelled-1000.jsonl -c roitune.yaml --json   # rerun: $0
    roitune label pool.jsonl --out labelled.jsonl -c roitune.yaml --json              # the whole pool
    roitune baseline -c roitune.yaml --only classical,hosted   # student; the teacher on the gold rows
    roitune curve -c roitune.yaml --candidate classical --json
    roitune report -c roitune.yaml --json

Targets: the student's gold accuracy is at least 95% of the teacher's; labelling 1,000 texts costs
what the server's own usage count times the prices says, and a rerun costs $0 with no call; the
curve fitted on the smaller fractions predicts the full-data accuracy within its interval.

Run: .venv/bin/python bench/distill_banking77.py [--small] [--teacher-seconds 300]
"""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

from _common import (BANKING77, BANKING77_CITATION, HAIKU_PRICES, LoadSampler, load_banking77, log, parser,
                     per_class, run_commands, serve_as_hosted, setup, table, write_result)

from evals.formatting import interval as ci
from evals.formatting import money as dollars
from evals.formatting import pct

TEACHER = "minilm-teacher"
LABELLED_1000 = 1000


class Metered:
    """A served classifier with the server's own meter: the calls it answered and their tokens."""

    def __init__(self, classifier):
        self.classifier, self.model_id, self.labels = classifier, TEACHER, classifier.labels
        self.calls = self.prompt_tokens = self.completion_tokens = 0
        self._lock = threading.Lock()

    def classify(self, messages):
        answer = self.classifier.classify(messages)
        with self._lock:
            self.calls += 1
            self.prompt_tokens += answer.prompt_tokens
            self.completion_tokens += answer.completion_tokens
        return answer

    def served(self) -> tuple[int, float]:
        """Calls answered so far and what they cost at the entered prices."""
        with self._lock:
            return self.calls, (self.prompt_tokens * HAIKU_PRICES[0] + self.completion_tokens * HAIKU_PRICES[1]) / 1e6


def trained_teacher(folder: Path, rows, labels: list[str], seconds: float, load: LoadSampler):
    """Sweep one known-good trial on the teacher's human labels and export it: (bundle, outputs, walls)."""
    import yaml

    from evals.record import Kind, records
    from evals.storage import load_existing_study
    from optimizer.config import demo_config_text

    folder.mkdir()
    cfg = yaml.safe_load(demo_config_text())
    cfg["task"]["labels"] = labels
    cfg["data"] = {"train": str(jsonl(folder / "train.jsonl", ({"text": e.text, "label": e.label} for e in rows))),
                   "split": {"validation": 0.1, "test": 0.1, "seed": 0}}
    cfg["baselines"]["run"] = []
    cfg["search"].update({"trials": 1, "base_models": ["minilm-l6"], "methods": ["full"], "heads": ["classifier"],
                          "trial_timeout_s": seconds})
    cfg.update({"storage": f"sqlite:///{folder / 'study.db'}", "study": "teacher", "runs_dir": str(folder / "runs")})
    config = folder / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    bundle = folder / "bundle"
    outputs, walls = run_commands({"teacher sweep": ["sweep", "-c", str(config), "--json"],
                                   "teacher export": ["export", "-c", str(config), "--trial", "best",
                                                      "--out", str(bundle)]}, load)
    [trial] = [r for r in records(load_existing_study(cfg["storage"], "teacher"), states=["COMPLETE"])
               if r.kind == Kind.trial]
    return bundle, outputs, walls, {
        "name": trial.name, "validation_accuracy": trial.validation.accuracy, "validation_n": trial.validation.n,
        "test_accuracy": trial.test.accuracy if trial.test else None, "compute_seconds": trial.compute_seconds,
        "training": asdict(trial.training) if trial.training else None}


def jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def parse_json(output: str) -> dict:
    return json.loads(output[output.find("{\n"):])


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--teacher-seconds", type=float, default=300, help="training seconds of the teacher's trial")
    args = p.parse_args()
    info = setup(args.threads)

    import yaml

    from evals.data import stratified_split
    from evals.record import learning_curves, records
    from evals.storage import load_existing_study
    from optimizer.config import demo_config_text
    from optimizer.predict import BundleClassifier, load_bundle_predictor, open_bundle

    examples, labels = load_banking77()
    if args.small:
        examples = per_class(examples, 30)
    rest, gold = stratified_split(examples, [0.2], seed=0)
    pool, teacher_rows = stratified_split(rest, [0.25], seed=1)
    work = Path(tempfile.mkdtemp(prefix="roitune-bench-distill-"))
    log(f"Banking77: {len(gold)} gold / {len(teacher_rows)} teacher-train / {len(pool)} unlabelled; work folder {work}")

    load = LoadSampler()
    if args.small:
        args.teacher_seconds = min(args.teacher_seconds, 60)
    bundle, outputs, walls, teacher_trial = trained_teacher(work / "teacher", teacher_rows, labels, args.teacher_seconds, load)
    found = open_bundle(bundle)
    predictor = load_bundle_predictor(found)
    teacher = Metered(BundleClassifier(found, predictor))
    teacher_gold = sum(p.label == e.label for p, e in zip(predictor.predict([e.text for e in gold]), gold)) / len(gold)
    server, hosted = serve_as_hosted(teacher, TEACHER)
    log(f"teacher bundle {bundle.name} (gold accuracy {pct(teacher_gold)}), serving at {server.base_url}")

    jsonl(work / "gold.jsonl", ({"text": e.text, "label": e.label} for e in gold))
    first = jsonl(work / "first-1000.jsonl", ({"text": e.text} for e in pool[:LABELLED_1000]))
    first_rows = min(LABELLED_1000, len(pool))
    everything = jsonl(work / "pool.jsonl", ({"text": e.text} for e in pool))
    cfg = yaml.safe_load(demo_config_text())
    cfg["task"]["labels"] = labels
    cfg["data"] = {"train": str(work / "labelled.jsonl"), "gold": str(work / "gold.jsonl"),
                   "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    cfg["economics"].update({"current_solution": TEACHER, "current_error_rate": None, "cost_per_error": 0.05})
    cfg["baselines"] = {"run": ["classical", "hosted"], "batch_size": 16, "hosted": hosted}
    cfg.update({"storage": f"sqlite:///{work / 'study.db'}", "study": "distill", "runs_dir": str(work / "runs")})
    config = work / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))

    label_1000 = ["label", str(first), "--out", str(work / "labelled-1000.jsonl"), "-c", str(config), "--json"]
    more, more_walls = run_commands({"label 1000": label_1000}, load)
    outputs.update(more), walls.update(more_walls)
    first_run, (calls_1000, served_1000) = parse_json(outputs["label 1000"]), teacher.served()
    more, more_walls = run_commands({"label 1000 again": label_1000}, load)
    rerun, (calls_after_rerun, _) = parse_json(more["label 1000 again"]), teacher.served()
    outputs.update(more), walls.update(more_walls)
    # The cost per label of the curve's payback: what the teacher cost a label, as metered.
    cfg["economics"]["cost_per_label"] = first_run["dollars_spent"] / first_run["live"]
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    label_pool = ["label", str(everything), "--out", str(work / "labelled.jsonl"), "-c", str(config), "--json"]
    more, more_walls = run_commands({"label pool": label_pool}, load)
    outputs.update(more), walls.update(more_walls)
    calls_pool, served_pool = teacher.served()
    commands = {"baseline": ["baseline", "-c", str(config), "--only", "classical,hosted", "--json"],
                "curve": ["curve", "-c", str(config), "--candidate", "classical", "--json"],
                "report": ["report", "-c", str(config), "--json"]}
    more, more_walls = run_commands(commands, load)
    outputs.update(more), walls.update(more_walls)
    server.shutdown()
    server.server_close()
    pooled, curve, report = (parse_json(outputs[k]) for k in ("label pool", "curve", "report"))

    study = load_existing_study(cfg["storage"], "distill")
    found = {r.name: r for r in records(study, states=["COMPLETE"])}
    student, hosted = found["classical"], found[f"hosted:{TEACHER}"]
    ratio = student.validation.accuracy / hosted.validation.accuracy
    [stored] = learning_curves(study)
    check = stored.check
    targets = {
        "student_at_least_95pct_of_teacher_gold": ratio >= 0.95,
        "labelling_1000_costs_what_the_meter_says": abs(first_run["dollars_spent"] - served_1000) < 1e-12
        and first_run["live"] == calls_1000 == first_rows
        and abs(pooled["dollars_spent"] - (served_pool - served_1000)) < 1e-12,
        "rerun_costs_0_and_no_call": rerun["dollars_spent"] == 0 and calls_after_rerun == calls_1000,
        "curve_predicts_full_data_within_interval": bool(check is not None and check.within),
    }

    label_text = table(["run", "rows", "live calls", "from cache", "new spend", "server's meter", "wall"], [
        ["label 1,000", first_run["rows"], first_run["live"], first_run["from_cache"],
         dollars(first_run["dollars_spent"]), dollars(served_1000), f"{walls['label 1000']:.0f}s"],
        ["label the same 1,000 again", rerun["rows"], rerun["live"], rerun["from_cache"],
         dollars(rerun["dollars_spent"]), f"{calls_after_rerun - calls_1000} calls", f"{walls['label 1000 again']:.0f}s"],
        [f"label the pool ({len(pool):,})", pooled["rows"], pooled["live"], pooled["from_cache"],
         dollars(pooled["dollars_spent"]), dollars(served_pool - served_1000), f"{walls['label pool']:.0f}s"],
    ], title="Labelling through the hosted client (prices: $1 / $5 per million tokens)")
    quality_text = table(["model", "trained on", "gold accuracy (validation)", "95% CI",
                          f"agreement with teacher (test, {student.test.n:,} rows)"], [
        [f"teacher ({TEACHER})", f"{len(teacher_rows):,} human labels", pct(hosted.validation.accuracy),
         ci(hosted.validation.accuracy_ci), pct(hosted.test.accuracy) if hosted.test else "-"],
        ["student (classical)", f"{stored.points[-1].train_rows:,} teacher labels", pct(student.validation.accuracy),
         ci(student.validation.accuracy_ci),
         pct(student.test.accuracy) if student.test else "-"],
    ], title=f"On {student.validation.n:,} gold rows; student / teacher = {ratio:.3f} (target: at least 0.95)")
    curve_text = table(["training rows", "fraction", "gold accuracy", "95% CI"],
                       [[f"{p.train_rows:,}", f"{p.fraction:g}", pct(p.accuracy), ci(p.accuracy_ci)]
                        for p in stored.points], title="Learning curve of the student (classical)")
    print(f"\ncheck: fitted without the {check.train_rows:,}-row point, predicted {pct(check.predicted.value)} "
          f"{ci([check.predicted.lo, check.predicted.hi])}; measured {pct(check.measured)}: "
          f"{'within' if check.within else 'OUTSIDE'}")
    print("\nrecommendation: " + report["recommendation"]["sentence"])
    print("targets: " + json.dumps(targets))
    warnings = [line.strip() for line in outputs["baseline"].splitlines() if line.startswith("warning:")]
    print("\n".join(warnings))
    info["load_average_during"] = load.summary()
    payload = {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "small": args.small,
                                  "gold": len(gold), "teacher_train": len(teacher_rows), "pool": len(pool),
                                  "labels": len(labels)},
        "teacher": {"model": TEACHER, "recipe": "roitune sweep (1 known-good trial: minilm-l6 full, classifier "
                    f"head, {args.teacher_seconds:g} training seconds) + roitune export", "prices_per_mtok": HAIKU_PRICES,
                    "served_by": "optimizer.serve (BundleClassifier, as roitune serve) on 127.0.0.1",
                    "trial": teacher_trial,
                    "gold_accuracy_direct": teacher_gold},
        "commands": {k: "roitune " + " ".join(v) for k, v in {"label 1000": label_1000, "label pool": label_pool,
                                                                    **commands}.items()},
        "server_meter_pool": {"calls": calls_pool - calls_1000, "dollars": served_pool - served_1000},
        "wall_seconds": walls, "label_1000": first_run, "label_1000_rerun": rerun, "label_pool": pooled,
        "server_meter_1000": {"calls": calls_1000, "dollars": served_1000},
        "student": {"gold_accuracy": student.validation.accuracy, "gold_ci": student.validation.accuracy_ci,
                    "agreement_test": student.test.accuracy if student.test else None},
        "teacher_measured_by_hosted_baseline": {"gold_accuracy": hosted.validation.accuracy,
                                                "gold_ci": hosted.validation.accuracy_ci},
        "student_over_teacher": ratio, "curve": curve, "recommendation": report["recommendation"],
        "warnings": warnings, "targets": targets, "tables": [label_text, quality_text, curve_text]}
    write_result("distill_banking77", payload, args.small)


if __name__ == "__main__":
    main()
