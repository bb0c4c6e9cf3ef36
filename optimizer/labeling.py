"""``roitune label``: the current model labels unlabelled texts, and its answers become training rows.

Distillation made a priced, resumable step. The teacher is any OpenAI-compatible endpoint, called
through ``evals.hosted.HostedClient`` exactly as the hosted baseline calls it: the key from the
environment, the same prompt (so a reply the baseline already paid for is reused), label-constrained
matching of the reply, the on-disk reply cache, the dollar cap and the retries.

Resuming: every row is appended to ``OUT.partial`` (flushed and fsynced) the moment its reply
arrives, keyed by its line in the input. A rerun after a kill reads that journal, drops a last line
cut short, and labels only the rows it lacks; a reply that arrived but was not journalled yet is in
the reply cache, so nothing is lost, repeated or paid twice. At the end (or when the cap stops the
run) ``OUT`` is written atomically in input order; the journal is removed once every row is in.

A bundle folder as teacher (``--teacher BUNDLE``) is served by ``optimizer.serve`` (the server of
``roitune serve``) on a free local port for the length of the run and reached through the same
client. Its labels cost compute, not a bill: the run reports its seconds priced at the
``economics`` hardware rate, and it keeps no reply cache (the port changes each run; the journal
still makes a killed run resume where it stopped).

Each row records who labelled it (``teacher``: model and endpoint or bundle, never the key), when,
and what its answer cost. A reply that names no label is kept with ``label: null`` and the reason: the
training loader skips such rows and says how many (``evals.data.load_examples``).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from evals.classify import PromptTemplate
from evals.data import DataError, load_examples
from evals.formatting import money
from evals.hosted import HostedClient, HostedError, HostedSpec, endpoint_url, match_label
from evals.storage import redact_url
from optimizer.config import Config, load_config
from optimizer.predict import Item, read_items, write_lines

JOURNAL_SUFFIX = ".partial"
_REPLY_SHOWN_CHARS = 80


class LabelError(ValueError):
    """A labelling run that cannot start as asked (one line: teacher, label set, journal)."""


@dataclass(frozen=True)
class LabelSummary:
    """What one run did: rows in the input, rows now in the output, and what it cost."""

    out: Path
    rows: int  # rows of the input
    written: int  # rows in the output (resumed + new)
    resumed: int  # rows already in the journal from an earlier run
    no_label: int  # rows (of those written) whose reply named no label
    from_cache: int  # new rows whose reply came from the cache (this run paid nothing for them)
    live: int  # new rows answered by a live call
    dollars_spent: float  # new money this run
    dollars_cached: float  # what the cached replies used this run had cost when paid
    teacher: str
    stopped_reason: str | None  # the cap, when it stopped the run before every row was labelled
    compute_seconds: float | None = None  # a local bundle teacher: seconds it spent labelling
    compute_dollars: float | None = None  # those seconds at the economics hardware rate

    @property
    def complete(self) -> bool:
        return self.written == self.rows


@dataclass(frozen=True)
class Teacher:
    """Who labels, as the run calls and records it."""

    spec: HostedSpec
    identity: dict[str, str]  # each row's ``teacher`` field: model and endpoint (or bundle folder)
    labels: list[str] | None = None  # a bundle's own label set
    key: str | None = None  # for a server this run started; otherwise the key is in the environment
    cache_dir: Path | None = None  # where replies are cached (None: the study's hosted cache)

    @property
    def local(self) -> bool:
        return "bundle" in self.identity


@contextmanager
def opened_teacher(cfg: Config, teacher: str | None, max_dollars: float | None) -> Iterator[Teacher]:
    """The teacher ``--teacher`` names, ready to call; a bundle folder is served until the block ends."""
    if teacher is not None and Path(teacher).is_dir():
        with served_bundle(Path(teacher)) as local:
            yield local
        return
    spec = resolve_teacher(cfg, teacher, max_dollars)
    yield Teacher(spec, {"model": spec.model, "base_url": redact_url(endpoint_url(spec))})


@contextmanager
def served_bundle(folder: Path) -> Iterator[Teacher]:
    """An exported bundle behind ``optimizer.serve`` on a free port of 127.0.0.1, for one run."""
    from optimizer.predict import BundleClassifier, load_bundle_predictor, open_bundle
    from optimizer.serve import make_server

    try:
        bundle = open_bundle(folder)
    except FileNotFoundError as problem:
        raise LabelError(f"--teacher {folder}: {problem}") from None
    classifier = BundleClassifier(bundle, load_bundle_predictor(bundle))
    server = make_server(classifier)
    thread = threading.Thread(target=server.serve_forever, name="label-teacher", daemon=True)
    thread.start()
    try:
        # No bill: zero prices, so the cap never binds; the server answers one request at a time
        # (its lock), so two in flight keep it busy without queueing the rest.
        spec = HostedSpec(base_url=server.base_url, model=classifier.model_id, input_price_per_mtok=0.0,
                          output_price_per_mtok=0.0, max_dollars=0.0, concurrency=2, timeout_s=300.0)
        with tempfile.TemporaryDirectory(prefix="roitune-label-cache-") as cache:
            yield Teacher(spec, {"model": classifier.model_id, "bundle": str(bundle.path)},
                          labels=list(bundle.spec.labels), key="local", cache_dir=Path(cache))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def resolve_teacher(cfg: Config, teacher: str | None, max_dollars: float | None) -> HostedSpec:
    """The endpoint that labels: ``baselines.hosted`` of the config (``None`` or ``hosted``), the same
    with another ``base_url`` (a URL, e.g. a bundle served by ``roitune serve``), or ``baselines.hosted``
    of another roitune.yaml (a path). A bundle folder is :func:`served_bundle`'s."""
    spec = cfg.baselines.hosted
    where = "baselines.hosted"
    if teacher not in (None, "hosted"):
        if teacher.startswith(("http://", "https://")):
            if spec is None:
                raise LabelError(f"--teacher {teacher}: baselines.hosted is not set in the config; it gives the "
                                 "model name, the key's environment variable and the prices for that endpoint")
            spec = spec.model_copy(update={"base_url": teacher})
        else:
            spec = load_config(Path(teacher)).baselines.hosted
            where = f"{teacher}: baselines.hosted"
    if spec is None:
        raise LabelError(f"{where} is not set: it is the teacher (base_url, model, api_key_env, prices), "
                         "or pass --teacher URL|CONFIG|BUNDLE")
    if spec.mode != "live":
        raise LabelError(f"{where}.mode is 'estimate': labelling needs a live endpoint")
    return spec if max_dollars is None else spec.model_copy(update={"max_dollars": max_dollars})


def label_set(cfg: Config) -> list[str]:
    """``task.labels``, else the labels of ``data.gold`` or ``data.train`` when one of them exists."""
    if cfg.task.labels:
        return list(cfg.task.labels)
    for path in (cfg.data.gold, cfg.data.train):
        if path is not None and Path(path).is_file():
            try:
                examples = load_examples(path, text_field=cfg.data.text_field, label_field=cfg.data.label_field)
            except DataError:
                continue
            return sorted({e.label for e in examples})
    raise LabelError("task.labels is empty and neither data.gold nor data.train can give the label set: "
                     "list the labels in task.labels")


class _Journal:
    """The rows labelled so far: appended one by one, each on disk before the next is counted."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def read_journal(path: Path, items: dict[int, Item], text_key: str,
                 teacher: dict[str, str]) -> dict[int, dict[str, Any]]:
    """Input line -> the row an earlier run journalled for it. A last line cut short by a kill is
    dropped (the file is truncated before it); a row that does not match the input, or that another
    teacher labelled, is an error."""
    if not path.is_file():
        return {}
    raw = path.read_bytes()
    *complete, tail = raw.split(b"\n")
    rows: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(complete, start=1):
        try:
            row = json.loads(line)
        except ValueError:
            raise LabelError(f"{path}:{number}: invalid JSON: not a journal of `roitune label`; delete it to "
                             "start over (the reply cache keeps what was paid for)") from None
        item = items.get(row.get("source_line")) if isinstance(row, dict) else None
        if item is None or row.get(text_key) != item.text:
            raise LabelError(f"{path}:{number}: field 'source_line': not the text of that line of the input: the "
                             "journal is from another input; delete it to start over")
        if row.get("teacher") != teacher:
            raise LabelError(f"{path}:{number}: field 'teacher': labelled by {row.get('teacher')}, not by this run's "
                             f"teacher {teacher}; delete the journal to label with this one")
        rows[item.line] = row
    if tail:  # killed mid-write: that row is labelled again (from the cache when its reply arrived)
        with open(path, "r+b") as file:
            file.truncate(len(raw) - len(tail))
    return rows


def label_file(cfg: Config, input_path: Path, out: Path, *, teacher: str | None = None,
               max_dollars: float | None = None, text_field: str | None = None,
               console: Console) -> LabelSummary:
    """Label every row of ``input_path`` not yet labelled into ``out`` (see the module docstring).

    The input is validated whole before anything is written or called; a HostedError (the
    endpoint keeps failing) is raised after the rows so far are written."""
    if out.resolve() == input_path.resolve():
        raise LabelError(f"--out {out} is the input file: write the labelled rows elsewhere")
    text_key, label_key = cfg.data.text_field, cfg.data.label_field
    # Read whole before a bundle teacher loads: a bad line fails in a second, not after the model.
    items = read_items(input_path, None, text_field=text_field or text_key, label_field=label_key)
    with opened_teacher(cfg, teacher, max_dollars) as who:
        return _label(cfg, who, items, out, console)


def _label(cfg: Config, who: Teacher, items: list[Item], out: Path, console: Console) -> LabelSummary:
    from optimizer.progress import progress_bars

    spec = who.spec
    labels = who.labels or label_set(cfg)
    text_key, label_key = cfg.data.text_field, cfg.data.label_field
    by_line = {item.line: item for item in items}
    journal_path = out.with_name(out.name + JOURNAL_SUFFIX)
    teacher_field = who.identity
    done = read_journal(journal_path, by_line, text_key, teacher_field)
    resumed = len(done)
    pending = [item for item in items if item.line not in done]
    template = PromptTemplate(cfg.task.instruction, tuple(labels), list_labels=True)
    name = f"{teacher_field['model']} at {teacher_field.get('bundle') or teacher_field['base_url']}"
    client = HostedClient(spec, cache_dir=who.cache_dir or Path(cfg.runs_dir) / "hosted-cache", key=who.key)
    started = time.perf_counter()
    journal = _Journal(journal_path)
    counts = {"from_cache": 0, "live": 0, "spent": 0.0, "cached": 0.0}
    lock = threading.Lock()
    abort = threading.Event()
    failure: list[HostedError] = []

    def keep(item: Item, reply) -> None:
        row = labelled_row(item, reply, labels, teacher_field, client.dollars(reply), text_key, label_key)
        journal.append(row)
        with lock:
            done[item.line] = row
            counts["from_cache" if reply.cached else "live"] += 1
            counts["cached" if reply.cached else "spent"] += row["dollars"]
        advance(1)

    def work(item: Item) -> None:
        if abort.is_set():
            return
        try:
            reply = client.call(template.messages(item.text), item.line, cancelled=abort.is_set)
        except HostedError as problem:
            failure.append(problem)
            abort.set()
            return
        if reply is not None:  # None: the cap leaves no room for it
            keep(item, reply)

    try:
        with progress_bars(console) as start:
            advance = start(f"labelling with {spec.model}", len(items))
            advance(resumed)
            live = []
            for item in pending:  # what was paid for before costs nothing: take it first
                reply = client.cached(template.messages(item.text))
                if reply is None:
                    live.append(item)
                else:
                    keep(item, reply)
            with ThreadPoolExecutor(max_workers=spec.concurrency, thread_name_prefix="label") as pool:
                list(pool.map(work, live))  # in input order, so with a cap the first rows are labelled
    finally:
        journal.close()
        client.close()
    seconds = time.perf_counter() - started
    rows = [done[line] for line in sorted(done)]
    write_lines((json.dumps(row, ensure_ascii=False) + "\n" for row in rows), out, None)
    if len(rows) == len(items):
        journal_path.unlink(missing_ok=True)
    summary = LabelSummary(
        out=out, rows=len(items), written=len(rows), resumed=resumed,
        no_label=sum(row[label_key] is None for row in rows), from_cache=counts["from_cache"], live=counts["live"],
        dollars_spent=counts["spent"], dollars_cached=counts["cached"], teacher=name,
        stopped_reason=(f"max_dollars (${spec.max_dollars:g}) reached after {len(rows):,} of {len(items):,} rows"
                        if client.budget.exhausted and len(rows) < len(items) else None),
        compute_seconds=seconds if who.local else None,
        compute_dollars=seconds * cfg.economics.hardware_price().value / 3600 if who.local else None)
    if failure:
        raise HostedError(f"{failure[0]}; {summary.written:,} of {summary.rows:,} rows are in {out}: rerun to "
                          "label the rest (nothing paid twice)")
    return summary


def labelled_row(item: Item, reply, labels: Sequence[str], teacher: dict[str, str], dollars: float, text_key: str,
                 label_key: str) -> dict[str, Any]:
    """One output row: the text, the teacher's label (None when its reply named none, with the reason),
    who labelled it, when, and what the answer cost."""
    label = match_label(reply.text, labels)
    when = datetime.fromtimestamp(reply.created, timezone.utc) if reply.created else datetime.now(timezone.utc)
    row: dict[str, Any] = {
        text_key: item.text, label_key: label,
        "teacher": teacher,
        "labelled_at": when.isoformat(timespec="seconds"), "dollars": dollars, "cached": reply.cached,
        "source_line": item.line, "id": item.id,
    }
    if label is None:
        row["reason"] = f"reply names no label: {reply.text[:_REPLY_SHOWN_CHARS]!r}"
    return row


def summary_lines(s: LabelSummary) -> list[str]:
    """What the run did and cost, for the terminal."""
    lines = [f"labelled {s.written:,} of {s.rows:,} rows with {s.teacher} into {s.out}"
             + (f" ({s.resumed:,} resumed from an earlier run)" if s.resumed else ""),
             f"cost: {money(s.dollars_spent)} new spend for {s.live:,} live calls"
             + (f"; {s.from_cache:,} from the cache ({money(s.dollars_cached)} paid before, $0 now)"
                if s.from_cache else "")]
    if s.compute_seconds is not None:
        lines.append(f"compute: {s.compute_seconds:,.0f} s of this machine for the local teacher, "
                     f"{money(s.compute_dollars)} at the economics hardware rate (no bill)")
    if s.no_label:
        lines.append(f"warning: {s.no_label:,} replies named no label: written with label null and the reason; "
                     "training skips them")
    if s.stopped_reason:
        lines.append(f"stopped: {s.stopped_reason}; rerun with a higher --max-dollars to label the rest "
                     "(nothing paid twice)")
    return lines
