#!/usr/bin/env python3
"""Run every CPU benchmark in turn (``make bench``); ``--small`` runs the smoke-sized versions.

Each script prints its table and writes bench/results/<name>[-small].json; BENCHMARKS.md quotes
the full runs. Sequential on purpose: two benchmarks at once would measure each other. A full
run takes about 1-1.5 hours on the shared 2-core CPU (see BENCHMARKS.md for each one's time).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["trial_throughput", "constrained_vs_generate", "baselines_banking77", "trial_overhead", "sweep_banking77",
           "distill_banking77"]


def main() -> int:
    extra = sys.argv[1:]
    only = [a for a in extra if not a.startswith("-")]
    flags = [a for a in extra if a.startswith("-")]
    failed = []
    for name in SCRIPTS:
        if only and name not in only:
            continue
        began = time.perf_counter()
        print(f"\n=== bench/{name}.py {' '.join(flags)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *flags])
        print(f"=== {name}: exit {code} after {time.perf_counter() - began:.0f}s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
