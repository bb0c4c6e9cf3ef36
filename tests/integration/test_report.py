"""``roitune report``: the table, the JSON and the HTML file, on a real study (baselines + sweep)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from report_study import StudyFiles, build_study, study_root
from typer.testing import CliRunner

from evals.cost import roi
from evals.formatting import money
from evals.recommend import decide
from evals.record import compute_dollars, records, study_data, sweep_trials
from evals.storage import load_existing_study
from optimizer.cli import app
from optimizer.config import load_config

pytestmark = pytest.mark.slow  # the session's study trains two adapters on CPU

CANDIDATE_FIELDS = {"name", "kind", "trial_number", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "split",
                    "n", "test", "cost_per_item", "cost_provenance", "cost_source", "items_per_second", "measured_on",
                    "caps", "monthly_cost", "monthly_savings", "payback_months", "break_even_volume", "standing"}


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> StudyFiles:
    return build_study(study_root(tmp_path_factory))


def invoke(*args: str) -> str:
    """The command's stdout (stderr carries progress and warnings)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def report(study: StudyFiles) -> dict:
    return json.loads(invoke("report", *study.cli_flags(), "--json"))


def test_json_has_the_recommendation_and_every_candidate_field(study: StudyFiles, report: dict):
    assert set(report["recommendation"]) >= {"sentence", "winner", "reason", "evidence"}
    names = [c["name"] for c in report["candidates"]]
    assert {"classical", "embedding"} <= set(names)
    finished = [t for t in sweep_trials(load_existing_study(study.storage, study.study)) if t.state.name == "COMPLETE"]
    assert sorted(c["trial_number"] for c in report["candidates"] if c["kind"] == "trial") == \
        [t.number for t in finished] != []
    for row in report["candidates"]:
        assert CANDIDATE_FIELDS <= set(row), CANDIDATE_FIELDS - set(row)
    assert report["recommendation"]["winner"] in [None, *names]
    monthly = [c["monthly_cost"] for c in report["candidates"]]
    assert monthly == sorted(monthly)  # cheapest first


def test_json_agrees_with_the_study_and_the_decision_rule(study: StudyFiles, report: dict):
    stored = load_existing_study(study.storage, study.study)
    cfg = load_config(study.config, study.overrides)
    assert report["compute_dollars"] == pytest.approx(compute_dollars(stored))
    assert report["compute_dollars"] > 0.001  # the two trials' training time, plus the failed one
    complete = [r for r in records(stored) if r.state == "COMPLETE"]
    _, _, rec = decide(complete, study_data(stored), cfg.economics, compute_dollars=compute_dollars(stored))
    assert report["recommendation"]["sentence"] == rec.sentence
    assert report["current"]["monthly_cost"] == pytest.approx(2500 + 5_000_000 * 0.10 * 0.05)
    assert report["current"]["error_rate_provenance"] == "user"  # no hosted baseline ran live
    assert all(row["split"] == "validation" for row in report["candidates"])


def test_candidate_numbers_are_the_roi_of_its_measurements(study: StudyFiles, report: dict):
    cfg = load_config(study.config, study.overrides)
    e = cfg.economics
    row = next(c for c in report["candidates"] if c["name"] == "classical")
    expected = roi(row["cost_per_item"], 1 - row["accuracy"], e, compute_dollars=report["compute_dollars"])

    # By hand, DESIGN.md's definitions (no dedicated instance in the demo config):
    monthly = e.tickets_per_month * (row["cost_per_item"] + (1 - row["accuracy"]) * e.cost_per_error)
    current = e.current_monthly_cost + e.tickets_per_month * e.current_error_rate * e.cost_per_error
    one_off = report["compute_dollars"] + e.engineering_hours * e.engineering_rate
    assert row["monthly_cost"] == pytest.approx(monthly) == pytest.approx(expected.monthly_cost)
    assert row["monthly_savings"] == pytest.approx(current - monthly) == pytest.approx(expected.monthly_savings)
    assert row["payback_months"] == expected.payback_months  # None (never) while it saves nothing
    if current > monthly:
        assert row["payback_months"] == pytest.approx(one_off / (current - monthly))
    assert row["break_even_volume"] == expected.break_even_volume
    assert report["economics"]["one_off_cost"] == pytest.approx(one_off)


def test_table_fits_80_columns_then_the_sentence(study: StudyFiles, report: dict):
    output = invoke("report", *study.cli_flags())  # CliRunner's terminal is 80 columns wide

    assert "Candidates in study 't'" in output
    assert max(len(line) for line in output.splitlines()) <= 80
    table = output.split("\nnow: ")[0]
    # Names wrap inside their cell rather than being cut; the money is never cut.
    assert first_column(table) == [c["label"] for c in report["candidates"]]
    for candidate in report["candidates"]:
        assert money(candidate["monthly_cost"]) in table
    assert "…" not in table
    flat = " ".join(output.split())  # the sentence wraps at the terminal's width
    assert flat.endswith(" ".join(report["recommendation"]["sentence"].split()))


def first_column(table: str) -> list[str]:
    """Each row's first cell, its wrapped lines joined (a row starts where the second cell is filled)."""
    cells: list[str] = []
    for line in table.splitlines():
        if not line.startswith("│"):
            continue
        first, second = (part.strip() for part in line.split("│")[1:3])
        if second:
            cells.append(first)
        elif cells:
            cells[-1] += first if cells[-1].endswith(("-", "/")) else " " + first
    return [cell.rstrip("*~") for cell in cells]


def test_html_is_one_self_contained_file(study: StudyFiles, report: dict, tmp_path: Path):
    path = tmp_path / "out" / "report.html"
    invoke("report", *study.cli_flags(), "--html", str(path))

    page = path.read_text(encoding="utf-8")
    assert html.escape(report["recommendation"]["sentence"]) in page
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']?(https?:)?//", page, re.IGNORECASE)
    cascades = [c for c in report["candidates"] if c["kind"] == "cascade"]
    assert page.count("Plotly.newPlot") == 2 + bool(cascades)  # Pareto, payback, the cheapest cascade's curve
    if cascades:
        assert "Cascades: local when confident" in page and html.escape(cascades[0]["label"]) in page
    assert len(page) > 1_000_000  # plotly.js is inlined, not fetched
    for row in report["candidates"]:
        assert html.escape(row["label"]) in page
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no side files


def test_cascades_are_in_the_json_with_their_parts_and_coverage(study: StudyFiles, report: dict):
    from evals.calibration import confidences, top_probabilities

    stored = {r.number: r for r in records(load_existing_study(study.storage, study.study))}
    rows = {c["trial_number"]: c for c in report["candidates"]}
    cascades = [c for c in report["candidates"] if c["kind"] == "cascade"]
    # The demo economics (an entered 10% error rate at $0.05 an error, $0.0005 an item) make the
    # classical baseline's cascade into the current solution pay: its unsure items go to it.
    into_current = [c for c in cascades if c["cascade"]["local"] == "classical" and c["cascade"]["assumed"]]
    assert len(into_current) == 1
    for row in cascades:
        parts = row["cascade"]
        local = stored[parts["local_trial_number"]]
        assert parts["local"] == local.label and 0 <= parts["threshold"] <= 1
        # Coverage: the share of validation items whose calibrated confidence reaches the threshold.
        conf = confidences(local.calibration, top_probabilities(local.validation))
        assert 0 < parts["coverage"] < 1
        assert parts["coverage"] == pytest.approx(float((conf >= parts["threshold"]).mean()))
        assert row["test"] is not None and parts["test_coverage"] is not None  # scored on test once chosen
        fallback_cost = 0.0005 if parts["assumed"] else rows[parts["fallback_trial_number"]]["cost_per_item"]
        assert row["cost_per_item"] == pytest.approx(rows[local.number]["cost_per_item"]
                                                     + (1 - parts["coverage"]) * fallback_cost)
        if parts["assumed"]:
            assert parts["fallback_trial_number"] is None and parts["assumed_fallback_accuracy"] == 0.9
            assert "assumed" in parts["assumption"] and row["macro_f1"] is None
    classical = rows[into_current[0]["cascade"]["local_trial_number"]]["calibration"]
    assert classical["method"] == "temperature"
    assert classical["ece_test"]["after"] <= classical["ece_test"]["before"] / 2


def test_missing_study_is_a_one_line_error(study: StudyFiles):
    result = CliRunner().invoke(app, ["report", *study.cli_flags(), "--set", "study=nope"])
    assert result.exit_code == 2
    assert "no study 'nope'" in result.output and "roitune baseline" in result.output
    assert "Traceback" not in result.output
