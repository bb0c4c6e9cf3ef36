"""Bad input, generated: every input gets a result or the documented error, never another
exception, a traceback, a hang or a half-written file.

- data loaders (``load_examples``, ``load_preferences``) on arbitrary bytes and on JSON-ish
  lines: a list of rows, or ``DataError`` whose every line reads ``file:line: reason`` (or
  ``file: reason`` for a whole-file problem);
- the config loader on arbitrary YAML text and bytes, YAML-shaped configs with wrong values,
  and arbitrary ``--set`` flags: a ``Config``, or ``ConfigError`` whose every line starts with
  ``file:line:``, ``file: key:`` or ``--set flag:``;
- ``roitune data check`` on fuzzed files: exit 0 or 2, never "Traceback";
- ``optimizer.serve`` over a real socket with arbitrary methods, paths, versions, headers and
  bodies: a 2xx answer, or an OpenAI-style JSON error (4xx; 501/505 for an unknown method or
  HTTP version), never a 500, never silence, within a timeout.
"""

from __future__ import annotations

import json
import re
import socket
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from evals.data import DataError, Example, PreferencePair, load_examples, load_preferences
from optimizer.config import Config, ConfigError, load_config
from http_servers import running
from reliability_support import KeywordClassifier, roitune

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORK = Path(tempfile.mkdtemp(prefix="roitune-fuzz-"))

# -- strategies ------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
labels = st.sampled_from(["billing", "network", "", " ", "billing ", "\u00e9t\u00e9", "a\nb"])
message = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["system", "user", "assistant", "tool", ""]) | json_values,
    "content": st.text(max_size=20) | json_values})
row = st.fixed_dictionaries({}, optional={
    "text": st.text(max_size=30) | json_values, "label": labels | json_values,
    "messages": st.lists(message, max_size=3) | json_values,
    "prompt": st.text(max_size=20) | json_values, "chosen": labels | json_values, "rejected": labels | json_values})
weird_lines = st.sampled_from([
    "[" * 50_000,                          # nesting deeper than the recursion limit
    '{"text": ' + "9" * 5000 + "}",        # an integer beyond Python's 4300-digit limit
    '{"text": "a \\ud800 b", "label": "x"}',  # a lone surrogate escape
    '{"text": "ok", "label": "\\udc00"}',
    "\ufeff{\"text\": \"bom\", \"label\": \"x\"}",
    '{"text": NaN, "label": Infinity}', "null", "[]", '"just a string"', "{", "\x00",
])
jsonish_line = (row.map(json.dumps) | row.map(lambda r: json.dumps(r)[:-1]) | weird_lines
                | st.text(max_size=40))
jsonish_file = st.lists(jsonish_line, max_size=8).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))
csv_file = st.lists(st.lists(st.text(max_size=12), max_size=4).map(",".join), max_size=6).map(
    lambda lines: ("text,label\n" + "\n".join(lines)).encode("utf-8", "surrogatepass"))
any_file = st.binary(max_size=1500) | jsonish_file | csv_file


def _write(data: bytes, suffix: str) -> Path:
    handle = tempfile.NamedTemporaryFile(dir=WORK, suffix=suffix, delete=False)
    with handle:
        handle.write(data)
    return Path(handle.name)


def assert_data_error(error: DataError, path: Path) -> None:
    message = str(error)
    assert message, "an empty error message"
    prefix = re.compile(rf"^{re.escape(str(path))}(:\d+)?: \S")
    for line in message.splitlines():
        assert prefix.match(line) or re.fullmatch(r"\(and \d+ more problems\)", line), line
    assert len(message.splitlines()) <= 11  # at most 10 problems shown, then a count


# -- data loaders ----------------------------------------------------------------------------


@FUZZ
@given(data=any_file, suffix=st.sampled_from([".jsonl", ".csv", ".txt"]),
       closed=st.none() | st.just(["billing", "network"]))
@example(data=b"[" * 100_000, suffix=".jsonl", closed=None)
@example(data=b'{"text": "x", "label": "\\ud800"}', suffix=".jsonl", closed=None)
@example(data=b'{"text": ' + b"1" * 5000 + b', "label": "x"}', suffix=".jsonl", closed=None)
@example(data=b"\xff\xfe\x00bad", suffix=".csv", closed=None)
@example(data=b'text,label\n"' + b"x" * 200_000 + b'",a\n', suffix=".csv", closed=None)
def test_load_examples_gives_rows_or_a_file_line_error(data, suffix, closed):
    path = _write(data, suffix)
    try:
        rows = load_examples(path, labels=closed)
    except DataError as error:
        assert_data_error(error, path)
    else:
        assert rows and all(isinstance(r, Example) for r in rows)
        for r in rows:
            assert r.text and r.label and r.text == r.text.strip() and r.label == r.label.strip()
            (r.text + r.label).encode("utf-8")  # only real characters get through
            assert closed is None or r.label in closed
            assert r.line >= 1


@FUZZ
@given(data=any_file, closed=st.none() | st.just(["billing", "network"]))
@example(data=b'{"prompt": "p", "chosen": "billing", "rejected": "billing"}', closed=None)
@example(data=b"[" * 100_000, closed=None)
def test_load_preferences_gives_pairs_or_a_file_line_error(data, closed):
    path = _write(data, ".jsonl")
    try:
        pairs = load_preferences(path, labels=closed)
    except DataError as error:
        assert_data_error(error, path)
    else:
        assert pairs and all(isinstance(p, PreferencePair) for p in pairs)
        assert all(p.prompt and p.chosen and p.rejected and p.chosen != p.rejected for p in pairs)


@settings(max_examples=60, deadline=None)
@given(data=any_file, suffix=st.sampled_from([".jsonl", ".csv"]))
@example(data=b'{"text": "hi", "label": "\\udc00"}\n{"text": "yo", "label": "b"}', suffix=".jsonl")
@example(data=b"[" * 100_000, suffix=".jsonl")
@example(data=b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n[[[', suffix=".jsonl")
def test_data_check_exits_0_or_2_without_a_traceback(data, suffix):
    path = _write(data, suffix)
    for extra in ([], ["--json"]):
        run = roitune("data", "check", str(path), "--model", "", *extra)
        assert run.exception is None, repr(run.exception)
        assert run.exit_code in (0, 2), (run.exit_code, run.stderr)
        assert "Traceback" not in run.stdout + run.stderr
        if run.exit_code == 2:
            assert run.stderr.startswith("error: ")
            assert all(line.startswith("error: ") for line in run.stderr.splitlines())
        elif extra:
            assert json.loads(run.stdout)["rows"] >= 1


# -- config ----------------------------------------------------------------------------------


def assert_config_error(error: ConfigError, path: Path | None) -> None:
    message = str(error)
    assert message
    file_prefix = rf"{re.escape(str(path))}(:\d+)?: \S" if path else r"(?!)"
    for line in message.splitlines():
        assert re.match(file_prefix, line) or line.startswith("--set "), line


def _config_file(text: bytes) -> Path:
    return _write(text, ".yaml")


TRAIN = _write(b'{"text": "a", "label": "x"}\n', ".jsonl")
valid_keys = {
    "task": ["instruction", "labels"], "data": ["train", "validation", "max_train_rows", "split", "text_field"],
    "economics": ["tickets_per_month", "cost_per_error", "hardware", "current_error_rate"],
    "search": ["trials", "rank", "learning_rate", "epochs", "methods", "objective", "max_seq_tokens"],
    "budget": ["max_dollars"], "heartbeat_s": None, "seed": None, "storage": None, "nonsense": None,
}


@st.composite
def config_shaped(draw) -> dict:
    """A config with real section and key names and arbitrary values."""
    config: dict = {"data": {"train": str(TRAIN)}}
    for section in draw(st.lists(st.sampled_from(sorted(valid_keys)), max_size=4, unique=True)):
        keys = valid_keys[section]
        if keys is None:
            config[section] = draw(json_values)
        else:
            config.setdefault(section, {})
            if isinstance(config[section], dict):
                for key in draw(st.lists(st.sampled_from(keys + ["typo_key"]), max_size=3, unique=True)):
                    config[section][key] = draw(json_values | st.sampled_from([1, 8, 0.5, -1, [4, 8], "roi"]))
    return config


yaml_text = (st.text(max_size=200) | st.sampled_from([
    "!!python/object/apply:os.system ['echo pwned']",
    "data: !!python/object/new:os.system ['echo pwned']", 'data: {train: "a\\0b"}', "data:\n  train: x\n  ? [1]\n  : 2",
    "1: 2\nnull: 3", "a: &a [*a]", "data: {train: x}\nseed: 1e400", "--- \n...\n", "\t", "data: []",
]))


@FUZZ
@given(text=yaml_text | config_shaped().map(json.dumps))
# Nesting deeper than the recursion limit (PyYAML scans it in quadratic time: examples, not the pool).
@example(text="[" * 1200)
@example(text="a: " + "[" * 1200 + "]" * 1200)
def test_load_config_on_arbitrary_yaml_text(text):
    path = _config_file(text.encode("utf-8", "surrogatepass"))
    try:
        config = load_config(path)
    except ConfigError as error:
        assert_config_error(error, path)
    else:
        assert isinstance(config, Config)


@FUZZ
@given(data=st.binary(max_size=300))
def test_load_config_on_arbitrary_bytes(data):
    path = _config_file(data)
    try:
        assert isinstance(load_config(path), Config)
    except ConfigError as error:
        assert_config_error(error, path)


set_keys = st.sampled_from(["search.trials", "search.rank", "data.train", "seed", "data", "search", "", "a..b",
                            "economics.cost_per_error", "heartbeat_s", "task.labels.0", "x" * 30])
set_values = (st.text(max_size=30) | st.sampled_from(["[", "[1, 2", "{a: 1}", "!!python/object/apply:os.system [id]",
                                                      "1e400", "-1", "null", "\x00", "'a\\0b'"]))
set_flags = st.lists(st.builds(lambda k, v: f"{k}={v}", set_keys, set_values) | st.text(max_size=20), max_size=4)


@FUZZ
@given(flags=set_flags)
@example(flags=["data.train=a\x00b"])
@example(flags=["search.rank=" + "[" * 1200])
@example(flags=["data=[1]", "data.train=x"])
def test_load_config_on_arbitrary_set_flags(flags):
    path = _config_file(f"data: {{train: {json.dumps(str(TRAIN))}}}\n".encode())
    try:
        assert isinstance(load_config(path, flags), Config)
    except ConfigError as error:
        assert_config_error(error, path)


# -- serve -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    from optimizer.serve import make_server

    with running(make_server(KeywordClassifier(), max_body_bytes=20_000)) as server:
        yield server


methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get", "FOO"]) \
    | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
paths = st.sampled_from(["/v1/chat/completions", "/v1/models", "/health", "/", "/v1/chat/completions/",
                         "/v1/models?x=1", "//", "/%00", "*", "/v1/../etc/passwd", "http://x/v1/models",
                         "/" + "a" * 70_000]) | st.text(max_size=30).map(lambda s: "/" + s)
versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.x", "FOO/1.1", "HTTP/0.9"])
chat_bodies = st.fixed_dictionaries({}, optional={
    "model": json_values, "messages": st.lists(message, max_size=3) | json_values,
    "stream": st.booleans() | json_values, "logprobs": st.booleans() | json_values,
    "temperature": json_values}).map(lambda b: json.dumps(b).encode())
bodies = chat_bodies | st.binary(max_size=300) | st.sampled_from([
    b"[" * 100_000, b'{"messages": [{"role": "user", "content": "parcel lost"}]}', b"{}", b"null",
    b'{"messages": [{"role": "system", "content": "x"}]}', b"\xff\xfe{}", b"1" * 5000])
header_names = st.sampled_from(["Content-Type", "Accept", "Authorization", "X-Anything", "Transfer-Encoding",
                                "Expect", "Connection", "Host"]) | st.text(alphabet="abcXYZ-", min_size=1, max_size=10)
header_values = st.sampled_from(["application/json", "chunked", "close", "keep-alive", "", "Bearer x"]) \
    | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40)
content_lengths = st.sampled_from(["exact", "missing", "-1", "abc", "999999999", "3", "0", "exact+5", " 12 "])


@st.composite
def raw_requests(draw) -> bytes:
    """One HTTP request as bytes, any part of it possibly wrong."""
    method, path, version, body = draw(methods), draw(paths), draw(versions), draw(bodies)
    line = f"{method} {path}" + ("" if version == "HTTP/0.9" else f" {version}")
    headers = [(draw(header_names), draw(header_values)) for _ in range(draw(st.integers(0, 4)))]
    length = draw(content_lengths)
    if length == "exact":
        headers.append(("Content-Length", str(len(body))))
    elif length == "exact+5":
        headers.append(("Content-Length", str(len(body) + 5)))
    elif length != "missing":
        headers.append(("Content-Length", length))
    head = line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1", "replace") + body


def exchange(server, request: bytes, timeout: float = 10.0) -> bytes:
    """Send the request, close our side, read everything the server answers."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as sock:
        try:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before reading everything: read its answer
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def first_response(raw: bytes) -> tuple[int | None, bytes]:
    """(status, body) of the first response; status None for an HTTP/0.9 (body-only) answer."""
    match = re.match(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n", raw)
    if match is None:
        return None, raw
    headers = dict(line.split(b":", 1) for line in match.group(2).split(b"\r\n") if line)
    headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
    length = int(headers[b"content-length"])
    return int(match.group(1)), raw[match.end():match.end() + length]


def assert_answer(status: int | None, body: bytes, request: bytes) -> None:
    method = request.split(b" ", 1)[0]
    if method == b"HEAD" and status is not None:
        return  # headers only, by definition
    payload = json.loads(body)
    if status is None and method == b"GET" and len(request.split(b"\r\n", 1)[0].split()) == 2:
        return  # a well-formed HTTP/0.9 request ("GET /path"): answered, body only, JSON as ever
    if status is None or status >= 400:
        assert set(payload) == {"error"} and {"message", "type", "code"} <= set(payload["error"]), payload
    if status is not None:
        assert status < 500 or status in (501, 505), (status, payload)  # unknown method / HTTP version
        if status == 200 and request.startswith(b"POST"):
            assert payload["choices"][0]["message"]["content"] in KeywordClassifier().labels


@settings(max_examples=200, deadline=None)
@given(request=raw_requests())
@example(request=b"\r\n")
@example(request=b"GARBAGE\r\n\r\n")
@example(request=b"GET /v1/models\r\nContent-Length: 2\r\n\r\n{}")  # HTTP/0.9: a real answer
@example(request=b"GET /health HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n")
@example(request=b"GET /health HTTP/1.1\r\nX: " + b"y" * 70_000 + b"\r\n\r\n")
@example(request=b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100000\r\n\r\n[")
@example(request=b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"[" * 100_000)
@example(request=b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 15000\r\n\r\n" + b"[" * 15_000)
def test_serve_answers_every_request_with_json(server, request):
    raw = request
    answer = exchange(server, raw)
    if not answer:
        # Only a request with no request line at all may go unanswered.
        assert raw.split(b"\r\n", 1)[0].strip() == b"", raw[:200]
        return
    status, body = first_response(answer)
    assert_answer(status, body, raw)


def test_serve_keeps_answering_while_a_client_stalls(server):
    """A client that never sends the body it announced ties up one thread, not the server."""
    stalled = socket.create_connection(server.server_address[:2], timeout=5)
    try:
        stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 500\r\n\r\n{\"messages\":")
        request = json.dumps({"messages": [{"role": "user", "content": "my parcel is late"}]}).encode()
        raw = (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\n"
               + f"Content-Length: {len(request)}\r\n\r\n".encode() + request)
        status, body = first_response(exchange(server, raw, timeout=5))
        assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "delivery"
    finally:
        stalled.close()
