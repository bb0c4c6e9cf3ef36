"""Security: secrets stay secret, servers listen on loopback, the dashboard reads only its
study, no model code or pickle is ever run, and YAML cannot execute anything."""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reliability_support import KEY_ENV, PLANTED_KEY, REPO, StudyFiles, roitune

APP = REPO / "dashboards" / "app.py"
PAGES = ["overview", "pareto", "roi", "trials", "errors"]
PASSWORD = "s3cret-PW-77"


# -- helpers -------------------------------------------------------------------------------


def rendered_text(at) -> str:
    """Everything an AppTest run put on the page (every element's protobuf, as text)."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def run_page(monkeypatch, argv: list[str], page: str, query: dict[str, str] | None = None):
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    monkeypatch.setattr(sys, "argv", [str(APP), *argv])
    at = AppTest.from_file(str(APP), default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if page != "overview":
        at._page_hash = calc_hash(page)  # how tests/integration/test_dashboard.py opens a page
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def listening(port: int) -> list[str]:
    """Local addresses listening on ``port``, as `ss -ltn` shows them."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if line.split()[3].rsplit(":", 1)[-1] == str(port)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the API key ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_planted_api_key_appears_in_no_output(study: StudyFiles, monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, PLANTED_KEY)  # present in the environment all along
    # Not vacuous: the key was really sent to the endpoint and the hosted baseline recorded.
    assert f"Bearer {PLANTED_KEY}" in study.auth_headers
    report = roitune("report", "-c", study.config, "--json", "--html", tmp_path / "report.html")
    assert report.exit_code == 0, report.stderr
    assert any(c["name"] == "hosted:keyword-classifier" and c["kind"] == "baseline" and c["hosted"]
               for c in json.loads(report.stdout)["candidates"])

    texts: dict[str, str] = {}
    for run in [*study.outputs, report]:
        texts[" ".join(run.args[:1]) + " stdout"] = run.stdout
        texts[" ".join(run.args[:1]) + " stderr"] = run.stderr
    argv = ["--config", str(study.config)]
    for page in PAGES:
        texts[f"dashboard {page}"] = rendered_text(run_page(monkeypatch, argv, page))
    assert "keyword-classifier" in texts["dashboard overview"]  # the pages show the hosted baseline
    files = [p for folder in (study.folder, tmp_path) for p in folder.rglob("*") if p.is_file()]
    assert study.db in files and any("hosted-cache" in str(p) for p in files) and tmp_path / "report.html" in files
    for path in files:
        texts[str(path)] = path.read_bytes().decode("latin-1")
    leaks = [name for name, text in texts.items() if PLANTED_KEY in text or "PLANTED-KEY" in text]
    assert not leaks, leaks


# -- the PostgreSQL password ---------------------------------------------------------------


def test_a_storage_password_is_never_printed(study: StudyFiles, monkeypatch):
    import evals.storage

    monkeypatch.setattr(evals.storage.time, "sleep", lambda s: None)  # no waiting between retries
    url = f"postgresql://roitune:{PASSWORD}@127.0.0.1:{free_port()}/roitune?sslmode=disable&password={PASSWORD}"
    outputs = []
    for args in (["report", "-c", study.config, "--json", "--set", f"storage={url}"],
                 ["sweep", "-c", study.config, "--storage", url, "--trials", "1"],
                 ["export", "-c", study.config, "--set", f"storage={url}", "--out", "/tmp/never"]):
        run = roitune(*args)
        assert run.exception is None, repr(run.exception)
        assert run.exit_code == 2 and run.stderr.lstrip().startswith("error: cannot use the study storage"), run.stderr
        assert "Traceback" not in run.stderr
        outputs += [run.stdout, run.stderr]
    at = run_page(monkeypatch, ["--config", str(study.config), f"--set=storage={url}"], "overview")
    outputs.append(rendered_text(at))
    assert any("Cannot read postgresql://roitune:***@" in text for text in outputs)
    assert not [text for text in outputs if PASSWORD in text]


def test_redact_url_hides_every_password_form():
    from sqlalchemy.engine import make_url

    from evals.storage import redact_url

    for url in ["postgresql://u:pw1@h:5432/db", "postgresql+psycopg://u:pw%401@h/db", "postgresql://u:p:w:1@h/db",
                "postgresql://u:pw1@h/db?sslmode=require&password=pw1", "postgresql://h/db?PASSWORD=pw1"]:
        parsed = make_url(url)
        secret = parsed.password or parsed.query.get("password") or parsed.query.get("PASSWORD")
        redacted = redact_url(url)
        assert secret and str(secret) not in redacted and "***" in redacted, (url, redacted)


# -- loopback by default -------------------------------------------------------------------


def test_serve_and_dashboard_default_to_loopback():
    import inspect

    import typer.main

    from optimizer.cli import app
    from optimizer.serve import make_server, serve_forever

    commands = typer.main.get_command(app).commands
    for name in ("serve", "dashboard"):
        [host] = [p for p in commands[name].params if p.name == "host"]
        assert host.default == "127.0.0.1", (name, host.default)
    for function in (make_server, serve_forever):
        assert inspect.signature(function).parameters["host"].default == "127.0.0.1"


def test_serve_forever_listens_on_loopback_only():
    from optimizer.serve import serve_forever
    from reliability_support import KeywordClassifier

    port, ready = free_port(), []
    thread = threading.Thread(target=serve_forever, args=(KeywordClassifier(),),
                              kwargs={"port": port, "on_ready": ready.append}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening(port) == [f"127.0.0.1:{port}"]
    finally:
        if ready:
            ready[0].shutdown()
        thread.join(timeout=10)
    assert listening(port) == []


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_roitune_dashboard_listens_on_loopback_only_and_stops_with_it(study: StudyFiles):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "optimizer.cli", "dashboard", "-c", str(study.config),
                                "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not listening(port) and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.2)
        assert listening(port) == [f"127.0.0.1:{port}"]
    finally:
        process.terminate()  # SIGTERM to roitune: it stops Streamlit too
        output = process.communicate(timeout=60)[0]
    assert f"http://127.0.0.1:{port}" in output
    deadline = time.monotonic() + 20
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert listening(port) == [], "Streamlit outlived roitune"


# -- the dashboard reads only its study ----------------------------------------------------


def test_dashboard_code_takes_no_path_from_the_browser():
    """No query parameter, text box, file uploader or file read in the dashboard's code."""
    forbidden = {"query_params", "experimental_get_query_params", "text_input", "text_area", "file_uploader",
                 "chat_input", "camera_input", "open", "read_text", "read_bytes", "load_study"}
    for path in (REPO / "dashboards").glob("*.py"):
        tree = ast.parse(path.read_text())
        used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)} | \
               {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        found = used & forbidden - ({"load_study"} if path.name == "data.py" else set())
        assert not found, (path.name, found)


_opened: list[tuple[str, str]] | None = None


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event in ("open", "sqlite3.connect"):
        target = args[0]
        if isinstance(target, (str, bytes, os.PathLike)):
            _opened.append((event, os.fsdecode(target)))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only while asked to


@pytest.mark.slow
def test_dashboard_ignores_query_parameters_naming_other_files(study: StudyFiles, monkeypatch, tmp_path):
    global _opened
    other = tmp_path / "other"
    other.mkdir()
    (other / "roitune.yaml").write_text("data: {train: /etc/passwd}\nstorage: sqlite:///" + str(other / "x.db"))
    (other / "x.db").write_bytes(b"")
    planted = {"config": str(other / "roitune.yaml"), "storage": f"sqlite:///{other / 'x.db'}",
               "study": "other", "path": "/etc/passwd", "file": str(other / "x.db"), "runs_dir": str(other)}
    import streamlit as st

    st.cache_data.clear()  # read the study afresh, so every file and database it opens is seen
    st.cache_resource.clear()
    _opened = []
    try:
        pages = {page: run_page(monkeypatch, ["--config", str(study.config)], page, planted) for page in PAGES}
    finally:
        opened, _opened = _opened, None
    for at in pages.values():
        for kind in ("text_input", "text_area", "file_uploader", "chat_input"):
            assert not at.get(kind), kind  # nowhere to type a path
    assert f"Study** `{study.study}`" in rendered_text(pages["overview"])  # the configured study, not "other"
    databases = {target for event, target in opened if event == "sqlite3.connect"}
    assert databases == {str(study.db)}, databases
    touched = [target for _, target in opened if target.startswith((str(other), "/etc/passwd"))]
    assert not touched, touched


# -- no remote code, no pickles --------------------------------------------------------------


def _from_pretrained_calls():
    for folder in ("optimizer", "evals", "dashboards"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr == "from_pretrained":
                    yield path.relative_to(REPO).as_posix(), node


def test_every_from_pretrained_refuses_remote_code_and_pickles():
    seen = []
    for where, call in _from_pretrained_calls():
        owner = ast.unparse(call.func.value)
        keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
        seen.append((where, owner))
        assert keywords.get("trust_remote_code") != "True", (where, owner)
        if owner == "PeftModel":  # adapter weights: PEFT reads safetensors (torch.load only with weights_only)
            assert where == "optimizer/adapters.py"
            continue
        assert where == "evals/models.py", (where, owner)  # every model load goes through one place
        explicit = keywords.get("trust_remote_code") == "False"
        common = keywords.get(None) == "_common_kwargs()"  # **_common_kwargs()
        kwargs_var = keywords.get(None) == "kwargs"  # kwargs = _common_kwargs() plus quantization
        gguf = "gguf_file" in keywords  # the bundled GGUF: a weights format with no code
        assert explicit or common or kwargs_var, (where, owner, keywords)
        if owner not in ("AutoTokenizer", "AutoConfig"):  # they read no weights
            assert common or kwargs_var or gguf, (where, owner, keywords)  # use_safetensors=True
    assert len(seen) >= 6, seen
    from evals.models import _common_kwargs

    assert _common_kwargs() == {"trust_remote_code": False, "use_safetensors": True}
    source = "\n".join(p.read_text() for f in ("optimizer", "evals", "dashboards") for p in (REPO / f).rglob("*.py"))
    for needle in ("trust_remote_code=True", "torch.load(", "pickle.load", "weights_only=False"):
        assert needle not in source, needle


class _Exploit:
    """Unpickling this creates the marker file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_only_model_folder_is_refused_and_never_unpickled(tiny_model, tmp_path):
    import shutil

    from evals.models import ModelError, load_causal_lm, load_sequence_classifier

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": _Exploit(marker)}))
    for load in (lambda: load_causal_lm(str(folder)), lambda: load_sequence_classifier(str(folder), ["a", "b"])):
        with pytest.raises(ModelError, match="cannot load model"):
            load()
    assert not marker.exists()


# -- YAML ------------------------------------------------------------------------------------


def test_yaml_tags_that_run_code_are_refused_and_nothing_runs(tmp_path):
    from optimizer.config import ConfigError, load_config

    marker = tmp_path / "PWNED"
    evil = [f"!!python/object/apply:os.system ['touch {marker}']\n",
            f"data: !!python/object/apply:os.system ['touch {marker}']\n",
            f"data: {{train: x}}\nseed: !!python/object/new:os.system ['touch {marker}']\n",
            f"data: !!python/name:os.system\n"]
    for number, text in enumerate(evil):
        path = tmp_path / f"evil{number}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:\d+: invalid YAML \(could not determine a constructor"):
            load_config(path)
        run = roitune("report", "-c", path)  # through the CLI too: one line, exit 2
        assert run.exit_code == 2 and run.exception is None and run.stderr.count("\n") == 1, run.stderr
    good = tmp_path / "good.yaml"
    good.write_text("data: {train: x}\n")
    with pytest.raises(ConfigError, match="^--set seed="):
        load_config(good, [f"seed=!!python/object/apply:os.system ['touch {marker}']"])
    assert not marker.exists()
