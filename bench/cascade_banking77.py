#!/usr/bin/env python3
"""Cascades and calibration on Banking77, with a served model standing in for the hosted API.

Data: Banking77's train.csv (10,003 queries, 77 intents; CC-BY-4.0, Casanueva et al. 2020), read in
place. roitune splits it itself (``data.split``: stratified, seed 0): 20% validation, 20% test,
the rest train. ``--small`` uses 12 queries per intent instead.

The stand-in for the hosted model is the strongest local model available on this CPU, the MiniLM
embedding + logistic regression (the ``embedding`` baseline's recipe, trained here on the same
train split), served by ``optimizer.serve`` on 127.0.0.1 and reached by roitune's hosted client as
``baselines.hosted`` with a base_url there and Claude Haiku 4.5's list prices entered in the config
($1 / $5 per million input / output tokens; usage counted with the SmolLM2 tokenizer). Then,
in-process through ``optimizer.cli.app``:

    roitune baseline -c roitune.yaml --only classical,embedding,hosted
    roitune cascade  -c roitune.yaml
    roitune report   -c roitune.yaml --json

Economics: 5M items a month, the current solution $2,500 a month ($0.0005 an item; its error
rate measured by the live hosted run), $0.05 per error, cpu-2core serving.

What is measured, each from the study the commands wrote:

- each cascade: threshold and coverage (chosen on validation), test accuracy and coverage, and the
  paired difference of test accuracy against its fallback alone (Newcombe's interval, McNemar);
- each calibrated candidate: the test ECE before and after temperature scaling, and, for
  comparison, after isotonic regression of correctness on the top probability fitted on the same
  validation items (scikit-learn), the alternative ``evals.calibration`` does not use.

Run: .venv/bin/python bench/cascade_banking77.py [--small]
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path

from _common import (BANKING77, BANKING77_CITATION, HAIKU_PRICES, LoadSampler, load_banking77, log,
                     memoise_embeddings, parser, per_class, run_commands, serve_as_hosted, setup, table, write_result)
from evals.formatting import interval as ci
from evals.formatting import money as dollars
from evals.formatting import pct

STAND_IN = "minilm-embedding-lr"


class EmbeddingClassifier:
    """The stand-in: MiniLM mean-pooled embeddings + logistic regression, as the embedding baseline."""

    model_id = STAND_IN

    def __init__(self, train, tokenizer_name: str = "smollm2-135m-instruct"):
        from sklearn.linear_model import LogisticRegression

        from evals.baselines import embed
        from evals.models import load_encoder, load_tokenizer

        self.encoder, self.tokenizer = load_encoder("minilm-l6"), load_tokenizer("minilm-l6")
        self.counter = load_tokenizer(tokenizer_name)
        self.model = LogisticRegression(C=10, max_iter=2000)
        self.model.fit(embed(self.encoder, self.tokenizer, [e.text for e in train]), [e.label for e in train])
        self.labels = [str(c) for c in self.model.classes_]

    def classify(self, messages):
        from evals.baselines import embed
        from optimizer.serve import Answer

        text = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        row = self.model.predict_proba(embed(self.encoder, self.tokenizer, [text]))[0]
        best = int(row.argmax())
        label = self.labels[best]
        prompt = sum(len(self.counter(str(m["content"]))["input_ids"]) for m in messages)
        return Answer(label, float(row[best]), prompt, len(self.counter(label)["input_ids"]))


def isotonic_ece(record, data) -> float | None:
    """Test ECE after isotonic regression of correctness on the top probability (fitted on validation)."""
    from sklearn.isotonic import IsotonicRegression

    from evals.calibration import correct, expected_calibration_error, top_probabilities

    if record.test is None or not record.test.top_probs:
        return None
    fit = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        top_probabilities(record.validation)[:, 0], correct(record.validation, data.labels, data.validation_gold))
    return expected_calibration_error(fit.predict(top_probabilities(record.test)[:, 0]),
                                      correct(record.test, data.labels, data.test_gold))


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    args = p.parse_args()
    info = setup(args.threads)

    import yaml

    from evals.data import DataSpec, load_splits
    from evals.recommend import compare
    from evals.record import records, study_data
    from evals.storage import load_existing_study
    from optimizer.config import demo_config_text

    work = Path(tempfile.mkdtemp(prefix="roitune-bench-cascade-"))
    data_path = BANKING77
    if args.small:
        examples, _ = load_banking77()
        data_path = work / "banking77-small.csv"
        with data_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "category"])
            writer.writerows([e.text, e.label] for e in per_class(examples, 12))
    data = {"train": str(data_path), "text_field": "text", "label_field": "category",
            "split": {"validation": 0.2, "test": 0.2, "seed": 0}}
    splits = load_splits(DataSpec(**data))
    log(f"Banking77: {len(splits.train)} train / {len(splits.validation)} validation / {len(splits.test)} test, "
        f"{len(splits.labels)} labels; work folder {work}")

    memoise_embeddings()  # the stand-in and the embedding baseline embed the same train queries
    began = time.perf_counter()
    stand_in = EmbeddingClassifier(splits.train)
    server, hosted = serve_as_hosted(stand_in, STAND_IN)
    log(f"stand-in {STAND_IN} trained in {time.perf_counter() - began:.0f}s, serving at {server.base_url}")

    cfg = yaml.safe_load(demo_config_text())
    cfg["data"] = data
    cfg["economics"].update({"current_solution": STAND_IN, "current_error_rate": None, "cost_per_error": 0.05})
    cfg["baselines"] = {"run": ["classical", "embedding", "hosted"], "batch_size": 16, "hosted": hosted}
    cfg.update({"storage": f"sqlite:///{work / 'study.db'}", "study": "banking77", "runs_dir": str(work / "runs")})
    config = work / "roitune.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))

    load = LoadSampler()
    commands = {"baseline": ["baseline", "-c", str(config), "--only", "classical,embedding,hosted"],
                "cascade": ["cascade", "-c", str(config)],
                "report": ["report", "-c", str(config), "--json"]}
    outputs, walls = run_commands(commands, load)
    server.shutdown()
    server.server_close()
    print(outputs["cascade"])
    report = json.loads(outputs["report"][outputs["report"].find("{\n"):])

    study = load_existing_study(cfg["storage"], "banking77")
    found = {r.number: r for r in records(study, states=["COMPLETE"])}
    held = study_data(study)
    rows, cascades = [], []
    for c in report["candidates"]:
        test = c["test"] or {}
        parts = c["cascade"]
        rows.append([c["name"], c["kind"], pct(c["accuracy"]), pct(test.get("accuracy")), ci(test.get("accuracy_ci")),
                     pct(parts["coverage"]) if parts else "-", pct(parts["test_coverage"]) if parts else "-",
                     dollars(c["cost_per_item"]), f"${c['monthly_cost']:,.0f}"])
        if parts is None or parts["fallback_trial_number"] is None:
            continue
        cascade, fallback = found[c["trial_number"]], found[parts["fallback_trial_number"]]
        d = compare(cascade, fallback, held, split="test")
        cascades.append({
            "name": c["name"], "threshold": parts["threshold"], "coverage_validation": parts["coverage"],
            "coverage_test": parts["test_coverage"], "test_accuracy": test.get("accuracy"),
            "fallback": fallback.name, "fallback_test_accuracy": fallback.test.accuracy,
            "difference_vs_fallback_test": {"delta": d.delta, "ci": [d.lo, d.hi], "items": d.n,
                                            "mcnemar_p": d.test.p_value if d.test else None},
            "not_worse_than_fallback_95ci": d.hi >= 0, "non_inferior_1_point": d.lo > -0.01,
            "target_met": d.lo > -0.01 and parts["test_coverage"] >= 0.60})
    text = table(["candidate", "kind", "validation accuracy", "test accuracy", "95% CI", "local (validation)",
                  "local (test)", "$/item", "$/month"], rows,
                 title=f"Banking77: {len(held.validation_gold)} validation / {len(held.test_gold)} test queries; "
                       f"ranked by monthly cost (the report's order)")
    diff_rows = [[c["name"], f"{c['threshold']:.3f}", pct(c["coverage_test"]), pct(c["test_accuracy"]),
                  pct(c["fallback_test_accuracy"]),
                  f"{100 * c['difference_vs_fallback_test']['delta']:+.1f} "
                  f"[{100 * c['difference_vs_fallback_test']['ci'][0]:+.1f}, "
                  f"{100 * c['difference_vs_fallback_test']['ci'][1]:+.1f}]",
                  "yes" if c["target_met"] else "no"] for c in cascades]
    diff_text = table(["cascade", "threshold", "local (test)", "test accuracy", "fallback alone",
                       "difference, points [95% CI, paired]", "target met"], diff_rows,
                      title="Cascades into a measured fallback, on test (target: not worse than the fallback alone "
                            "at 95%, at least 60% answered locally)")

    calibration, cal_rows = [], []
    for r in found.values():
        if r.calibration is None or r.calibration.ece_test is None:
            continue
        before, after = r.calibration.ece_test
        iso = isotonic_ece(r, held)
        calibration.append({"name": r.name, "temperature": r.calibration.temperature, "ece_test_before": before,
                            "ece_test_after": after, "ece_test_isotonic": iso, "ratio": after / before,
                            "ece_validation": list(r.calibration.ece_validation)})
        cal_rows.append([r.name, f"{r.calibration.temperature:.3f}", f"{before:.4f}", f"{after:.4f}",
                         f"{after / before:.2f}", "-" if iso is None else f"{iso:.4f}"])
    cal_text = table(["candidate", "temperature", "test ECE before", "test ECE after", "after / before",
                      "test ECE, isotonic instead"], cal_rows,
                     title="Calibration fitted on validation, ECE (15 bins) on test (target: after / before <= 0.5)")
    print("\nrecommendation: " + report["recommendation"]["sentence"])
    info["load_average_during"] = load.summary()
    write_result("cascade_banking77", {
        "machine": info, "data": {"path": str(BANKING77), "citation": BANKING77_CITATION, "small": args.small,
                                  "split": data["split"], "labels": len(held.labels),
                                  "validation": len(held.validation_gold), "test": len(held.test_gold)},
        "stand_in": {"model": STAND_IN, "prices_per_mtok": HAIKU_PRICES, "served_by": "optimizer.serve on 127.0.0.1"},
        "config": {**cfg, "baselines": {**cfg["baselines"], "hosted": {**cfg["baselines"]["hosted"],
                                                                       "base_url": "http://127.0.0.1:<port>/v1"}}},
        "commands": {k: "roitune " + " ".join(v) for k, v in commands.items()}, "wall_seconds": walls,
        "recommendation": report["recommendation"], "candidates": report["candidates"], "cascades": cascades,
        "calibration": calibration, "tables": [text, diff_text, cal_text]}, args.small)


if __name__ == "__main__":
    main()
