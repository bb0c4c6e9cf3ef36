"""The Streamlit dashboard on a real study: every page through ``AppTest``, then the real
server (``roitune dashboard``) in a real browser."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_study import FAIL_REASON, StudyFiles, build_study, study_root
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash
from typer.testing import CliRunner

import dashboards
from evals.charts import pareto_front
from evals.cost import roi
from evals.formatting import money, payback_text, pct
from evals.record import records, study_data, sweep_trials
from evals.report import Report, study_report
from evals.storage import load_existing_study
from optimizer.cli import app
from optimizer.config import load_config

APP = Path(dashboards.__file__).with_name("app.py")
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
slow = pytest.mark.slow  # the session's study trains two adapters on CPU


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> StudyFiles:
    return build_study(study_root(tmp_path_factory))


@pytest.fixture(scope="module")
def report(study: StudyFiles) -> Report:
    cfg = load_config(study.config, study.overrides)
    return study_report(load_existing_study(study.storage, study.study), cfg.economics)


def app_argv(study: StudyFiles) -> list[str]:
    """What ``roitune dashboard`` passes after ``--``."""
    return ["--config", str(study.config), *(f"--set={flag}" for flag in study.overrides)]


def open_page(monkeypatch: pytest.MonkeyPatch, argv: list[str], page: str = "overview") -> AppTest:
    monkeypatch.setattr(sys, "argv", [str(APP), *argv])
    at = AppTest.from_file(str(APP), default_timeout=180).run()
    if page != "overview":
        # AppTest.switch_page only finds file pages (streamlit#16611); a callable st.Page is
        # registered under the hash of its url_path.
        at._page_hash = calc_hash(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def boxes(at: AppTest) -> list[str]:
    return [b.value for kind in (at.success, at.info, at.warning, at.error) for b in kind]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# --- pages --------------------------------------------------------------------------------


@slow
def test_overview_shows_the_report(study: StudyFiles, report: Report, monkeypatch: pytest.MonkeyPatch):
    at = open_page(monkeypatch, app_argv(study))

    assert report.recommendation.sentence in boxes(at)
    best = report.headline
    assert metric(at, "Current monthly cost") == money(report.current_monthly_cost)
    assert any(best.record.label in m.value for m in at.markdown)
    assert metric(at, "Candidate monthly cost") == money(best.roi.monthly_cost)
    assert metric(at, "Monthly savings") == money(best.roi.monthly_savings)
    assert metric(at, "Payback") == payback_text(best.roi.payback_months)
    ladder = at.dataframe[0].value
    assert list(ladder["candidate"]) == [r.record.label for r in report.ranked]
    assert list(ladder["caps"]) == ["; ".join(c.text() for c in r.record.caps) or "-" for r in report.ranked]
    assert list(ladder["saves $/month"]) == [money(r.roi.monthly_savings) for r in report.ranked]
    assert len(at.get("plotly_chart")) == 2
    assert study.storage in at.sidebar.caption[0].value  # no password in a SQLite URL to hide


@slow
def test_pareto_page_lists_the_front(study: StudyFiles, report: Report, monkeypatch: pytest.MonkeyPatch):
    at = open_page(monkeypatch, app_argv(study), "pareto")

    e = report.economics
    points = [(r.record.label, r.result.accuracy, r.record.cost_per_item) for r in report.ranked]
    points.append((f"{e.current_solution} (current)", 1 - e.current_error_rate, e.current_cost_per_item))
    assert list(at.dataframe[0].value["candidate"]) == front(points)
    assert len(at.get("plotly_chart")) == 1

    at.radio(key="pareto-metric").set_value("macro_f1").run()  # the current solution has no macro-F1
    # Nor has a cascade into an assumed fallback (its escalated answers are unknown).
    points = [(r.record.label, r.result.macro_f1, r.record.cost_per_item) for r in report.ranked
              if r.result.macro_f1 == r.result.macro_f1]
    assert list(at.dataframe[0].value["candidate"]) == front(points)


def front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the non-dominated (quality, $/item) points, cheapest first."""
    flags = pareto_front([(quality, cost) for _, quality, cost in points])
    return [name for (name, _, _), on_front in sorted(zip(points, flags), key=lambda p: p[0][2]) if on_front]


@slow
def test_roi_calculator_recomputes_payback_live(study: StudyFiles, report: Report, monkeypatch: pytest.MonkeyPatch):
    at = open_page(monkeypatch, app_argv(study), "roi")
    chosen = report.headline
    assert at.selectbox(key="roi-candidate").value == chosen.record.name
    assert metric(at, "Monthly savings") == money(chosen.roi.monthly_savings)  # the config's numbers

    at.slider(key="cost-per-error").set_value(0.0).run()  # errors free: the cheap candidates save money
    before = metric(at, "Payback")
    at.slider(key="volume").set_value(1_000_000).run()
    after = metric(at, "Payback")

    e = report.economics.model_copy(update={"tickets_per_month": 1_000_000, "current_monthly_cost": 500.0,
                                            "cost_per_error": 0.0})
    expected = roi(chosen.record.cost_per_item, 1 - chosen.result.accuracy, e, compute_dollars=report.compute_dollars)
    assert after == payback_text(expected.payback_months) != before
    assert metric(at, "Monthly savings") == money(expected.monthly_savings)
    assert not at.exception


@slow
def test_trials_page_shows_history_importances_and_failures(study: StudyFiles, monkeypatch: pytest.MonkeyPatch):
    at = open_page(monkeypatch, app_argv(study), "trials")
    sweep = sweep_trials(load_existing_study(study.storage, study.study))
    complete = [t for t in sweep if t.state.name == "COMPLETE"]

    assert metric(at, "Trials") == str(len(sweep)) == "3"  # two sweep trials and the failed one
    assert metric(at, "Fail") == "1" and metric(at, "Complete") == str(len(complete))
    history, failures = at.dataframe[0].value, at.dataframe[-1].value
    assert list(history["state"]) == [t.state.name for t in sweep]
    assert {"learning_rate", "rank"} <= set(history.columns)
    assert list(failures["reason"]) == [FAIL_REASON]
    # The median pruner may stop the second trial; the page shows importances only for two
    # completed trials, and says why not otherwise.
    assert any(t.intermediate_values for t in sweep)
    if len(complete) >= 2:
        assert len(at.get("plotly_chart")) == 2  # importances and the validation checks
    else:
        assert len(at.get("plotly_chart")) == 1
        assert any("need at least 2 completed trials" in b for b in boxes(at))


@slow
def test_errors_page_lists_the_misclassified_items(study: StudyFiles, monkeypatch: pytest.MonkeyPatch):
    at = open_page(monkeypatch, app_argv(study), "errors")
    stored = load_existing_study(study.storage, study.study)
    data = study_data(stored)

    for record in records(stored, states=["COMPLETE"]):
        if record.cascade is not None and record.cascade.assumed:  # no answers for its escalated items
            assert record.number not in at.selectbox(key="errors-candidate").options
            continue
        at.selectbox(key="errors-candidate").set_value(record.number).run()
        assert not at.exception
        assert len(at.get("plotly_chart")) == 2  # confusion matrix and per-class F1
        split = "test" if record.test is not None else "validation"  # a trial not chosen has no test result
        if split == "validation":
            assert any("not scored on test" in c.value for c in at.caption)
        gold = data.gold(split)
        wrong = sum(p != gold[i] for i, p in record.result(split).predicted_labels(data.labels).items())
        table = at.dataframe[0].value
        assert len(table) == wrong > 0
        assert (table["gold"] != table["predicted"]).all()


@slow
def test_cascades_page_shows_the_chosen_threshold_and_calibration(study: StudyFiles, report: Report,
                                                                  monkeypatch: pytest.MonkeyPatch):
    at = open_page(monkeypatch, app_argv(study), "cascades")
    cascades = [r for r in report.ranked if r.record.cascade is not None]
    assert cascades  # the demo's classical baseline escalates to the current solution (see test_report)
    first = cascades[0]
    parts = first.record.cascade

    assert at.selectbox(key="cascade").value == first.record.label
    assert metric(at, "Threshold") == f"{parts.threshold:.3f}"
    assert metric(at, "Answered locally") == pct(parts.coverage)
    assert metric(at, "Monthly cost") == money(first.roi.monthly_cost)
    assert len(at.get("plotly_chart")) == 1  # the curve over the threshold
    if parts.assumed:
        assert any("assumed" in w.value for w in at.warning)
    listed, calibration = at.dataframe[0].value, at.dataframe[1].value
    assert list(listed["cascade"]) == [r.record.label for r in cascades]
    calibrated = [r for r in report.ranked if r.record.calibration is not None]
    assert list(calibration["candidate"]) == [r.record.label for r in calibrated]
    assert list(calibration["temperature"]) == [f"{r.record.calibration.temperature:.3f}" for r in calibrated]


@slow
def test_query_parameters_cannot_point_the_app_elsewhere(study: StudyFiles, report: Report,
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(sys, "argv", [str(APP), *app_argv(study)])
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params.update({"config": "/etc/passwd", "storage": f"sqlite:///{tmp_path}/x.db", "study": "other"})
    at.run()
    assert report.recommendation.sentence in boxes(at)
    assert not list(tmp_path.iterdir())


def test_missing_study_says_how_to_make_one_and_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    db = tmp_path / "none.db"
    at = open_page(monkeypatch, ["--storage", f"sqlite:///{db}", "--study", "demo"])
    assert any("roitune baseline" in b for b in boxes(at))
    assert not db.exists()


def test_unreachable_storage_is_shown_without_its_password(monkeypatch: pytest.MonkeyPatch):
    at = open_page(monkeypatch, ["--storage", "postgresql://alice:s3cret@127.0.0.1:1/roitune", "--study", "x"])
    shown = [e.value for e in at.error]
    assert any("alice:***@127.0.0.1:1" in e and "Connection refused" in e for e in shown)
    assert not any("s3cret" in e for e in shown + [m.value for m in at.markdown])


def test_config_problems_are_listed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from optimizer.config import demo_config_text

    config = tmp_path / "roitune.yaml"
    config.write_text(demo_config_text())
    at = open_page(monkeypatch, ["--config", str(config), "--set=economics.tickets_per_mont=5"])
    assert any("did you mean 'economics.tickets_per_month'" in e.value for e in at.error)


@slow
def test_app_never_imports_torch(study: StudyFiles):
    """Every page, in a fresh interpreter (this one has trained models)."""
    script = textwrap.dedent(f"""
        import sys
        from streamlit.testing.v1 import AppTest
        from streamlit.util import calc_hash
        sys.argv = {[str(APP), *app_argv(study)]!r}
        at = AppTest.from_file({str(APP)!r}, default_timeout=180).run()
        for page in ["pareto", "roi", "trials", "errors"]:
            at._page_hash = calc_hash(page)
            at.run()
            assert not at.exception, (page, at.exception)
        heavy = sorted(m for m in ("torch", "transformers", "peft", "trl") if m in sys.modules)
        print("heavy:", heavy)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout


def test_dashboard_command_hides_the_storage_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from optimizer.config import demo_config_text

    config = tmp_path / "roitune.yaml"
    config.write_text(demo_config_text())
    started: list[list[str]] = []

    class FakeStreamlit:  # records the command instead of serving
        def __init__(self, command: list[str]):
            started.append(command)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeStreamlit)
    result = CliRunner().invoke(app, ["dashboard", "-c", str(config), "--port", "9123",
                                      "--set", "storage=postgresql://alice:s3cret@db.example:5432/roitune"])
    assert result.exit_code == 0, result.output
    assert "alice:***@db.example" in result.output and "s3cret" not in result.output
    command = started[0]
    assert command[1:5] == ["-m", "streamlit", "run", str(APP)]
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "9123"
    assert command[command.index("--") + 1:][:2] == ["--config", str(config.resolve())]


# --- the real server in a real browser ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)


def listening_addresses(port: int) -> set[str]:
    """Addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # little-endian words
                found.add(socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words))
    return found


@pytest.fixture(scope="module")
def served(study: StudyFiles) -> Iterator[str]:
    """``roitune dashboard`` on a free port; yields its URL."""
    port = free_port()
    log = study.runs.parent / f"dashboard-{port}.log"
    with log.open("w") as sink:
        process = subprocess.Popen([str(Path(sys.executable).with_name("roitune")), "dashboard", *study.cli_flags(),
                                    "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=study.runs.parent)
    try:
        wait_for(f"http://127.0.0.1:{port}/_stcore/health", timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()  # roitune passes it on to Streamlit and waits for it
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # roitune and its Streamlit child
            raise


class Browser:
    """Headless Chromium driven over the DevTools protocol.

    ``chromium --screenshot`` alone shoots a blank page: Streamlit draws after messages on a
    websocket, which ``--virtual-time-budget`` does not wait for. Here we wait until the
    charts are drawn, then shoot.
    """

    def __init__(self, profile: Path):
        from websockets.sync.client import connect  # a Streamlit dependency

        port = free_port()
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1400,1000", f"--remote-debugging-port={port}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(f"http://127.0.0.1:{port}/json/version", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.ids = itertools.count(1)
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            message = json.loads(self.socket.recv())
            if message.get("id") == number:
                assert "error" not in message, message["error"]
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 120) -> None:
        """Navigate and wait until the JavaScript expression ``ready`` is true."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(ready):
            assert time.monotonic() < deadline, f"{url} not ready: {ready}"
            time.sleep(0.5)
        time.sleep(1.0)  # let the last chart finish its transition

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


@slow
def test_dashboard_listens_on_loopback_only(served: str):
    port = int(served.rsplit(":", 1)[1])
    assert listening_addresses(port) == {"127.0.0.1"}


@slow
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)")
def test_overview_in_a_real_browser(served: str, report: Report, tmp_path: Path):
    from PIL import Image

    browser = Browser(tmp_path / "profile")
    try:
        browser.open(served + "/", ready="document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2")
        shot = tmp_path / "dashboard.png"
        browser.screenshot(shot)
        text = browser.evaluate("document.body.innerText")
        dom = browser.evaluate("document.documentElement.outerHTML")
    finally:
        browser.close()

    def words(line: str) -> str:  # Streamlit's markdown draws "->" as an arrow
        return " ".join(line.replace("->", "\u2192").split())

    assert words(report.recommendation.sentence) in words(text)
    assert money(report.headline.roi.monthly_savings) in text
    assert "js-plotly-plot" in dom and "Traceback" not in text and 'data-testid="stException"' not in dom
    image = Image.open(shot)
    assert image.size == (1400, 1000)
    assert shot.stat().st_size > 30_000
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 500  # a drawn page, not a blank one
    if os.environ.get("ROITUNE_UPDATE_DOCS") == "1":  # a test run leaves the tree as it found it
        shutil.copyfile(shot, REPO / "docs" / "dashboard.png")  # committed as the README's picture
