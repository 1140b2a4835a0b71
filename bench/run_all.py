"""Run every benchmark in order, each in its own process, then print one summary of the goals.

    .venv/bin/python bench/run_all.py [--entities 100000] [--strict]      (or: make bench)

Each script's output is shown as it runs; its last `BENCH-SUMMARY` line feeds the summary.
Exit status: 1 when a script fails or times out (with --strict, also when a goal is missed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, SUMMARY_PREFIX  # noqa: E402

SCRIPTS = ("synthetic_catalog", "ingest", "lookup", "ack_latency", "full_answer", "memory")
TIMEOUT = 1800


def run(script: str, entities: int) -> tuple[dict | None, float, int]:
    """Run one benchmark, echoing its output; returns its summary, seconds and exit status."""
    started = time.perf_counter()
    command = [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--entities", str(entities)]
    print(f"\n=== {script}: {' '.join(command[1:])}", flush=True)
    summary = None
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(TIMEOUT, process.kill)  # this process only, by its handle
    watchdog.start()
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            if line.startswith(SUMMARY_PREFIX):
                summary = json.loads(line[len(SUMMARY_PREFIX):])
            else:
                print(line, end="", flush=True)
        status = process.wait()
    finally:
        watchdog.cancel()
    if status < 0:
        print(f"{script}: stopped by signal {-status} (timeout {TIMEOUT}s)")
    return summary, time.perf_counter() - started, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}; "
          f"load average {os.getloadavg()[0]:.2f}")
    rows, failed_scripts, missed = [], [], 0
    for script in SCRIPTS:
        summary, seconds, status = run(script, args.entities)
        if status != 0:
            failed_scripts.append(script)
        for goal in (summary or {}).get("goals", []):
            missed += not goal["ok"]
            rows.append(f"{'PASS' if goal['ok'] else 'FAIL'}  {script:<12} {goal['name']:<44} "
                        f"{goal['value']:>10.2f}{goal['unit']:<3} (goal ≤ {goal['limit']:g}{goal['unit']})")
        load = (summary or {}).get("figures", {}).get("loadavg_1m")
        rows.append(f"      {script:<12} {'ran in':<44} {seconds:>10.1f} s   (exit {status}"
                    + (f", load average {load:.2f})" if load is not None else ")"))
    print("\n=== summary\n" + "\n".join(rows))
    if failed_scripts:
        print(f"failed: {', '.join(failed_scripts)}")
    print(f"{missed} goal(s) missed")
    return 1 if failed_scripts or (args.strict and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
