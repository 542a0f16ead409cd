"""Runs the test suite once per Keras backend, each in its own process.

Usage: python tests/run_backends.py [pytest args...]

Fails if any backend fails, runs no test, or skips a test: a backend whose
tests did not run is a failure nobody would otherwise see.
"""

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")


def run(backend, args, report):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # --durations: CI runs close to its time budget; show where it goes.
    command = [sys.executable, "-m", "pytest", "-q", "--durations=15", f"--junitxml={report}"]
    command += args
    print(f"\n===== KERAS_BACKEND={backend}: {' '.join(command)}", flush=True)
    start = time.time()
    code = subprocess.call(command, env=env, cwd=Path(__file__).resolve().parents[1])
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if Path(report).exists():
        root = ET.parse(report).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in counts}
    counts["seconds"] = round(time.time() - start)
    counts["exit_code"] = code
    return counts


def main(args):
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in BACKENDS:
            results[backend] = run(backend, args, os.path.join(tmp, f"{backend}.xml"))
    print("\n===== summary")
    problems = []
    for backend, c in results.items():
        passed = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
        print(
            f"{backend:>10}: {passed} passed, {c['failures'] + c['errors']} failed, "
            f"{c['skipped']} skipped in {c['seconds']} s (exit {c['exit_code']})"
        )
        if c["exit_code"] != 0:
            problems.append(f"{backend}: pytest exited {c['exit_code']}")
        if c["tests"] == 0:
            problems.append(f"{backend}: no test ran")
        if c["skipped"]:
            problems.append(f"{backend}: {c['skipped']} tests skipped")
    total = sum(c["tests"] - c["failures"] - c["errors"] - c["skipped"] for c in results.values())
    failed = sum(c["failures"] + c["errors"] for c in results.values())
    for problem in problems:
        print(f"FAILED {problem}")
    print(f"{total} passed, {failed} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
