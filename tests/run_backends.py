"""Runs the test suite once per Keras backend, each in its own process.

Usage: python tests/run_backends.py [--jobs N] [pytest args...]

Fails if any backend fails, runs no test, or skips a test: a backend whose
tests did not run is a failure nobody would otherwise see.

`--jobs N` runs up to N backends at once (default: one per CPU core, at most
three). A single pytest process keeps about one core busy, so on a 2-core
machine two backends side by side finish well before three in turn. Each
concurrent backend's output is printed whole when it finishes; meanwhile a
line per finished test file says how far each backend is, e.g.
`[jax] 120/310 tests, 0 failed, 5:12 (tests/cli_test.py)`, and a failing
test is named as soon as it fails. With `--jobs 1` pytest's output streams
as it runs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Longest first: with two jobs, JAX runs beside TensorFlow then torch.
BACKENDS = ("jax", "tensorflow", "torch")
ROOT = Path(__file__).resolve().parents[1]
_print_lock = threading.Lock()
_started = {}  # backend -> time its pytest started


class Progress:
    """Reads one backend's progress file (tests/progress_plugin.py) as it grows."""

    def __init__(self, backend, path):
        self.backend, self.path = backend, path
        self.offset, self.total, self.done = 0, None, set()
        self.failed = self.skipped = 0
        self.file = None  # test file of the last finished test

    def lines(self):
        """Lines for the console: one per finished test file, one per failure."""
        if not os.path.exists(self.path):
            return []
        with open(self.path) as progress:
            progress.seek(self.offset)
            text = progress.read()
        text = text[: text.rfind("\n") + 1]  # whole lines only
        self.offset += len(text.encode())
        out = []
        for line in text.splitlines():
            outcome, _, node = line.partition(" ")
            if outcome == "collected":
                self.total = int(node)
                continue
            test_file = node.split("::")[0]
            if self.file is not None and test_file != self.file:
                out.append(self.summary(self.file))
            self.file = test_file
            self.done.add(node)
            self.skipped += outcome == "skipped"
            if outcome == "failed":
                self.failed += 1
                out.append(f"[{self.backend}] FAILED {node}")
        return out

    def summary(self, finished_file=None):
        seconds = int(time.time() - _started.get(self.backend, time.time()))
        total = "?" if self.total is None else self.total
        line = (
            f"[{self.backend}] {len(self.done)}/{total} tests, {self.failed} failed, "
            + (f"{self.skipped} skipped, " if self.skipped else "")
            + f"{seconds // 60}:{seconds % 60:02d}"
        )
        return f"{line} ({finished_file})" if finished_file else line


def watch(futures, tmp, interval=2.0):
    """Prints the backends' progress lines until every run has finished."""
    progress = [Progress(b, os.path.join(tmp, f"{b}.progress")) for b in futures]
    closed = set()
    while True:
        finished = all(f.done() for f in futures.values())
        for p in progress:
            lines = p.lines()
            if futures[p.backend].done() and p.backend not in closed:
                closed.add(p.backend)
                lines.append(p.summary(p.file) + ", done")
            if lines:
                with _print_lock:
                    print("\n".join(lines), flush=True)
        if finished:
            return
        time.sleep(interval)


def run(backend, args, tmp, stream):
    """Runs pytest for one backend; returns its counts from the JUnit report."""
    report = os.path.join(tmp, f"{backend}.xml")
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_VAE_PROGRESS_FILE": os.path.join(tmp, f"{backend}.progress"),
    }
    # --durations: CI runs close to its time budget; show where it goes.
    # One cache folder per backend: concurrent runs must not share files.
    # tests.progress_plugin: a line per finished test for `watch`.
    command = [
        sys.executable, "-m", "pytest", "-q", "--durations=15", f"--junitxml={report}",
        "-o", f"cache_dir=.pytest_cache/{backend}", "-p", "tests.progress_plugin",
    ]
    command += args
    header = f"\n===== KERAS_BACKEND={backend}: {' '.join(command)}"
    start = _started[backend] = time.time()
    if stream:
        print(header, flush=True)
        code = subprocess.call(command, env=env, cwd=ROOT)
    else:
        with _print_lock:
            print(f"===== {backend}: started", flush=True)
        log_path = os.path.join(tmp, f"{backend}.log")
        with open(log_path, "w") as log:
            code = subprocess.call(
                command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        with _print_lock, open(log_path) as log:
            print(header, flush=True)
            sys.stdout.write(log.read())
            sys.stdout.flush()
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if Path(report).exists():
        root = ET.parse(report).getroot()
        suite = root if root.tag == "testsuite" else root.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in counts}
    counts["seconds"] = round(time.time() - start)
    counts["exit_code"] = code
    return counts


def main(argv):
    # Exact `--jobs` only: anything else, abbreviations included, is pytest's.
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--jobs", type=int, default=min(len(BACKENDS), os.cpu_count() or 1))
    options, args = parser.parse_known_args(argv)
    jobs = max(1, min(options.jobs, len(BACKENDS)))
    print(f"{len(BACKENDS)} backends, {jobs} at a time", flush=True)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {b: pool.submit(run, b, args, tmp, jobs == 1) for b in BACKENDS}
            if jobs > 1:
                watch(futures, tmp)
            results = {b: futures[b].result() for b in BACKENDS}
    print(f"\n===== summary ({round(time.time() - start)} s in all, {jobs} at a time)")
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
