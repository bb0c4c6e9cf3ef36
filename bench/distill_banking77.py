#!/usr/bin/env python3
"""Distillation on Banking77: a teacher labels, a student learns from its labels, gold rows judge both.

Data: Banking77's train.csv (10,003 queries, 77 intents; CC-BY-4.0, Casanueva et al. 2020), read in
place. A stratified 20% (seed 0) is the gold set (human labels, ``data.gold``); of the rest, a
stratified quarter (seed 1) trains the teacher with its human labels and the other three quarters
are the unlabelled pool: the teacher stands for the current model, built once on few human labels,
the pool for the bulk of the traffic it routes. ``--small`` uses 30 queries per intent instead.

The teacher is a local candidate: the classical baseline's model (TF-IDF word + char n-grams,
logistic regression; ``evals.baselines.classical_model``) trained on its half, served by
``optimizer.serve`` (the server ``roitune serve`` runs) on 127.0.0.1 and reached by roitune's hosted
client, with Claude Haiku 4.5's list prices entered ($1 / $5 per million input / output tokens;
usage counted with the SmolLM2 tokenizer). It is not an exported bundle: a baseline has no adapter
to export, and a fine-tuned trial would not train on this CPU within the benchmark's budget. The
student is the classical baseline too (cheap on CPU; the same recipe on other labels). Then,
in-process through ``optimizer.cli.app``:

    roitune label first-1000.jsonl --out labelled-1000.jsonl -c roitune.yaml --json   # 1,000 texts
    roitune label first-1000.jsonl --out labelled-1000.jsonl -c roitune.yaml --json   # rerun: $0
    roitune label pool.jsonl --out labelled.jsonl -c roitune.yaml --json              # the whole pool
    roitune baseline -c roitune.yaml --only classical,hosted   # student; the teacher on the gold rows
    roitune curve -c roitune.yaml --candidate classical --json
    roitune report -c roitune.yaml --json

Targets: the student's gold accuracy is at least 95% of the teacher's; labelling 1,000 texts costs
what the server's own usage count times the prices says, and a rerun costs $0 with no call; the
curve fitted on the smaller fractions predicts the full-data accuracy within its interval.

Run: .venv/bin/python bench/distill_banking77.py [--small]
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from _common import (BANKING77, BANKING77_CITATION, LoadSampler, load_banking77, log, parser, per_class, run_commands,
                     setup, table, write_result)

from evals.formatting import interval as ci
from evals.formatting import money as dollars
from evals.formatting import pct

KEY_ENV = "ROITUNE_BENCH_TEACHER_KEY"
TEACHER = "classical-teacher"
HAIKU_PRICES = (1.0, 5.0)  # $ per million input / output tokens, Claude Haiku 4.5 list prices
LABELLED_1000 = 1000


class ClassicalTeacher:
    """The teacher behind the server: the classical recipe on human labels; counts what it serves."""

    model_id = TEACHER

    def __init__(self, train, tokenizer_name: str = "smollm2-135m-instruct"):
        from evals.baselines import classical_model
        from evals.models import load_tokenizer

        self.model = classical_model().fit([e.text for e in train], [e.label for e in train])
        self.labels = [str(c) for c in self.model.classes_]
        self.counter = load_tokenizer(tokenizer_name)
        self.calls = self.prompt_tokens = self.completion_tokens = 0
        self._lock = threading.Lock()

    def predict(self, texts):
        return [str(label) for label in self.model.predict(list(texts))]

    def classify(self, messages):
        from optimizer.serve import Answer

        text = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        row = self.model.predict_proba([text])[0]
        best = int(row.argmax())
        label = self.labels[best]
        prompt = sum(len(self.counter(str(m["content"]))["input_ids"]) for m in messages)
        completion = len(self.counter(label)["input_ids"])
        with self._lock:
            self.calls += 1
            self.prompt_tokens += prompt
            self.completion_tokens += completion
        return Answer(label, float(row[best]), prompt, completion)

    def served(self) -> tuple[int, float]:
        """Calls answered so far and what they cost at the entered prices (the server's own meter)."""
        with self._lock:
            return self.calls, (self.prompt_tokens * HAIKU_PRICES[0] + self.completion_tokens * HAIKU_PRICES[1]) / 1e6


def jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def parse_json(output: str) -> dict:
    return json.loads(output[output.find("{\n"):])


def main() -> None:
    import os

    args = parser(__doc__.split("\n")[0]).parse_args()
    info = setup(args.threads)

    import yaml

    from evals.data import stratified_split
    from evals.record import learning_curves, records
    from evals.storage import load_existing_study
    from optimizer.config import demo_config_text
    from optimizer.serve import make_server

    examples, labels = load_banking77()
    if args.small:
        examples = per_class(examples, 30)
    rest, gold = stratified_split(examples, [0.2], seed=0)
    pool, teacher_rows = stratified_split(rest, [0.25], seed=1)
    work = Path(tempfile.mkdtemp(prefix="roitune-bench-distill-"))
    log(f"Banking77: {len(gold)} gold / {len(teacher_rows)} teacher-train / {len(pool)} unlabelled; work folder {work}")

    began = time.perf_counter()
    teacher = ClassicalTeacher(teacher_rows)
    teacher_seconds = time.perf_counter() - began
    teacher_gold = sum(p == e.label for p, e in zip(teacher.predict([e.text for e in gold]), gold)) / len(gold)
    server = make_server(teacher, port=0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    os.environ[KEY_ENV] = "local-teacher"
    log(f"teacher trained in {teacher_seconds:.0f}s (gold accuracy {pct(teacher_gold)}), serving at {server.base_url}")

    jsonl(work / "gold.jsonl", ({"text": e.text, "label": e.label} for e in gold))
    first = jsonl(work / "first-1000.jsonl", ({"text": e.text} for e in pool[:LABELLED_1000]))
    first_rows = min(LABELLED_1000, len(pool))
    everything = jsonl(work / "pool.jsonl", ({"text": e.text} for e in pool))
    cfg = yaml.safe_load(demo_config_text())
    cfg["task"]["labels"] = labels
    cfg["data"] = {"train": str(work / "labelled.jsonl"), "gold": str(work / "gold.jsonl"),
                   "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    cfg["economics"].update({"current_solution": TEACHER, "current_error_rate": None, "cost_per_error": 0.05})
    cfg["baselines"] = {"run": ["classical", "hosted"], "batch_size": 16, "hosted": {
        "base_url": server.base_url, "model": TEACHER, "api_key_env": KEY_ENV,
        "input_price_per_mtok": HAIKU_PRICES[0], "output_price_per_mtok": HAIKU_PRICES[1], "max_dollars": 20.0,
        "concurrency": 4, "timeout_s": 120}}
    cfg.update({"storage": f"sqlite:///{work / 'study.db'}", "study": "distill", "runs_dir": str(work / "runs")})
    config = work / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))

    load = LoadSampler()
    label_1000 = ["label", str(first), "--out", str(work / "labelled-1000.jsonl"), "-c", str(config), "--json"]
    outputs, walls = run_commands({"label 1000": label_1000}, load)
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
    # The work folder is a temporary folder of this machine: the result names it <work>.
    payload = json.loads(json.dumps({
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "small": args.small,
                                  "gold": len(gold), "teacher_train": len(teacher_rows), "pool": len(pool),
                                  "labels": len(labels)},
        "teacher": {"model": TEACHER, "recipe": "evals.baselines.classical_model", "prices_per_mtok": HAIKU_PRICES,
                    "served_by": "optimizer.serve on 127.0.0.1", "train_seconds": teacher_seconds,
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
        "warnings": warnings, "targets": targets, "tables": [label_text, quality_text, curve_text]},
                                    default=str).replace(str(work), "<work>"))
    write_result("distill_banking77", payload, args.small)


if __name__ == "__main__":
    main()
