"""Shared helpers of the CPU benchmarks (bench/*.py): environment, data, timing, tables, results.

Every benchmark runs on a shared 2-core CPU, so absolute speeds drift with whatever else runs.
The rules the scripts follow:

- one torch thread count for every side of a comparison (``--threads``, default 1: on the
  shared 2-core machine two OpenMP threads lose more to contention than they gain; measured
  2.3x slower at load ~6);
- speeds are reported as a ratio against a baseline measured in the same run, interleaved
  (A, B, A, B, ...) so that load changes hit both sides; absolute numbers are printed too and
  labelled noisy, with the load average seen during the run;
- every result is written as JSON under ``bench/results/`` next to the printed table;
- numbers for people (percentages, intervals, dollars) are formatted by ``evals.formatting``, as in
  the product's tables and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BANKING77 = Path(os.environ.get("ROITUNE_BANKING77", ROOT.parent / "shared" / "data" / "banking77" / "train.csv"))
BANKING77_CITATION = ("Banking77 (Casanueva et al., 2020, 'Efficient Intent Detection with Dual Sentence "
                      "Encoders', CC-BY-4.0): 10,003 customer-support queries, 77 intents")

if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first on the path, not the repo
    sys.path.insert(0, str(ROOT))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--small", action="store_true", help="A quick smoke-sized run (numbers not quoted).")
    p.add_argument("--threads", type=int, default=1, help="torch threads for every side (default 1).")
    return p


def setup(threads: int) -> dict[str, Any]:
    """Offline, quiet, a fixed thread count; returns a description of the machine and run."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        import datasets

        # Without HF datasets installed, the name finds the repository's data folder instead.
        getattr(datasets, "disable_progress_bars", lambda: None)()
    except ImportError:
        pass
    return machine(threads)


def machine(threads: int) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    try:
        import trl

        trl_version = trl.__version__
    except ImportError:
        trl_version = None
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip()
        # Result files are outputs: a batch of benches rewrites them as it goes, and that must not
        # mark the next bench's code as uncommitted.
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                     ":(exclude)bench/results"], cwd=ROOT,
                                    capture_output=True, text=True, check=False).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": threads,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__, "trl": trl_version,
        "git_commit": commit + ("+uncommitted" if dirty else ""),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


class LoadSampler:
    """The 1-minute load average, sampled whenever ``sample()`` is called (between batches)."""

    def __init__(self):
        self.values: list[float] = []

    def sample(self) -> None:
        self.values.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        if not self.values:
            self.sample()
        return {"min": round(min(self.values), 2), "max": round(max(self.values), 2),
                "mean": round(sum(self.values) / len(self.values), 2)}


def hardware_price():
    """The cpu-2core $/hour Figure from evals.cost (the price a 2-vCPU serving box costs)."""
    from evals.cost import Economics

    return Economics(hardware="cpu-2core").hardware_price()


HAIKU_PRICES = (1.0, 5.0)  # $ per million input / output tokens, Claude Haiku 4.5 list prices
STAND_IN_KEY_ENV = "ROITUNE_BENCH_STAND_IN_KEY"


def serve_as_hosted(classifier, model: str):
    """Serve ``classifier`` (``optimizer.serve``, the server of ``roitune serve``) on a free local port
    as the hosted model a user pays for: (the running server, the ``baselines.hosted`` entry that
    reaches it through roitune's hosted client at Claude Haiku 4.5's list prices)."""
    from optimizer.serve import make_server

    server = make_server(classifier, port=0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    os.environ[STAND_IN_KEY_ENV] = "local-stand-in"  # a local server takes any key
    return server, {"base_url": server.base_url, "model": model, "api_key_env": STAND_IN_KEY_ENV,
                    "input_price_per_mtok": HAIKU_PRICES[0], "output_price_per_mtok": HAIKU_PRICES[1],
                    "max_dollars": 20.0, "concurrency": 4, "timeout_s": 120}


def load_banking77():
    """Banking77 as evals.data Examples (read in place, never copied into the repo)."""
    from evals.data import load_examples

    if not BANKING77.is_file():
        raise SystemExit(f"Banking77 not found at {BANKING77} (set ROITUNE_BANKING77)")
    examples = load_examples(BANKING77, text_field="text", label_field="category")
    return examples, sorted({e.label for e in examples})


def per_class(examples: Sequence, n: int, seed: int = 0, labels: Sequence[str] | None = None,
              shuffle_labels: bool = False) -> list:
    """Exactly ``n`` examples of each label (fewer when a label has fewer), seeded, label order
    interleaved (a, b, c, a, b, c, ...) so any prefix is balanced too; ``shuffle_labels`` draws
    the label order at random (seeded), so a prefix covers random labels, not the first ones."""
    by_label: dict[str, list] = defaultdict(list)
    for e in examples:
        by_label[e.label].append(e)
    rng = random.Random(seed)
    chosen = {}
    order = sorted(labels if labels is not None else by_label)
    if shuffle_labels:
        rng.shuffle(order)
    for label in order:
        group = by_label[label][:]
        rng.shuffle(group)
        chosen[label] = group[:n]
    out = []
    for i in range(n):
        out += [group[i] for group in chosen.values() if i < len(group)]
    return out


def write_result(name: str, payload: dict[str, Any], small: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}{'-small' if small else ''}.json"
    payload = {"benchmark": name, "small": small, "command": command_line(), **payload}
    text = json.dumps(payload, indent=2, default=str)
    # Paths relative to the project, so a result says nothing about the machine it ran on; a
    # bench's temporary work folder (mkdtemp with a "roitune-" prefix) is <work>.
    text = text.replace(f"{ROOT}/", "").replace(f"{ROOT.parent}/", "../")
    text = re.sub(re.escape(tempfile.gettempdir()) + r"/roitune-[\w.-]+", "<work>", text)
    path.write_text(text + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    return f".venv/bin/python bench/{Path(sys.argv[0]).name}" + (f" {args}" if args else "")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """A GitHub-markdown table (printed, and pasted into BENCHMARKS.md as is)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"  # noqa: E731
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r) for r in cells)]
    text = "\n".join(out)
    print(("\n" + title + "\n" if title else "\n") + text, flush=True)
    return text


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", file=sys.stderr, flush=True)


def memoise_embeddings(min_texts: int = 500) -> None:
    """Make ``evals.baselines.embed`` remember its result for a large list of texts: two arms that
    embed the same train queries (an embedding baseline and a retriever, or a stand-in model) pay
    that once. Same function, same inputs, same numbers: a bench-side cache only."""
    import evals.baselines as ladder

    original, memo = ladder.embed, {}

    def embed_once(encoder, tokenizer, texts, *, batch_size=64):
        key = (encoder.config.name_or_path, tuple(texts)) if len(texts) >= min_texts else None
        if key is not None and key in memo:
            return memo[key]
        out = original(encoder, tokenizer, texts, batch_size=batch_size)
        if key is not None:
            memo[key] = out
        return out

    ladder.embed = embed_once


def run_commands(commands: dict[str, list[str]], load: LoadSampler) -> tuple[dict[str, str], dict[str, float]]:
    """Run ``roitune`` commands in-process, in order; their outputs and wall seconds. Stops the
    benchmark at the first that fails, showing its output."""
    from typer.testing import CliRunner

    from optimizer.cli import app

    runner, outputs, walls = CliRunner(), {}, {}
    for name, argv in commands.items():
        log("roitune " + " ".join(argv))
        began = time.perf_counter()
        result = runner.invoke(app, argv, catch_exceptions=False)
        walls[name] = time.perf_counter() - began
        load.sample()
        outputs[name] = result.output
        if result.exit_code != 0:
            print(result.output[-3000:])
            raise SystemExit(f"roitune {name} failed with exit code {result.exit_code}")
        log(f"roitune {name}: {walls[name]:.0f}s")
    return outputs, walls


class JsonLines:
    """The GPU benchmarks' output: one JSON object a line, printed and appended to ``path``, each
    naming the device it was measured on and the seconds since the script started."""

    def __init__(self, path: Path | str, *, device: str):
        self.path, self.device, self.began = Path(path), device, time.perf_counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self.rows: list[dict[str, Any]] = []

    def emit(self, **fields: Any) -> dict[str, Any]:
        row = {"device": self.device, **fields, "t_s": round(time.perf_counter() - self.began, 1)}
        self.rows.append(row)
        line = json.dumps(row, default=str)
        print(line, flush=True)
        with self.path.open("a") as out:
            out.write(line + "\n")
        return row


def label_agreement(reference: Sequence[str], other: Sequence[str], target: float = 0.99) -> dict[str, Any]:
    """Share of items two paths labelled the same (the GPU checks' target: 99%), and which differ."""
    if len(reference) != len(other) or not reference:
        raise ValueError(f"cannot compare {len(reference)} labels with {len(other)}")
    flipped = [i for i, (a, b) in enumerate(zip(reference, other)) if a != b]
    share = 1 - len(flipped) / len(reference)
    return {"items": len(reference), "agreement": round(share, 4), "target": target, "passed": share >= target,
            "flipped": flipped}


def demo_instruction() -> str:
    """The demo tickets' system prompt (the task's instruction), from their first train row."""
    with (ROOT / "datasets" / "tickets" / "train.jsonl").open(encoding="utf-8") as rows:
        return json.loads(rows.readline())["messages"][0]["content"]
