"""Runs the test suite once per Keras backend, each in its own process.

Usage: python tests/run_backends.py [--jobs N] [pytest args...]

Fails if any backend fails, runs no test, or skips a test: a backend whose
tests did not run is a failure nobody would otherwise see.

`--jobs N` runs up to N pytest processes at once (default: one per CPU core,
at most three). A single pytest process keeps about one core busy, so on a
2-core machine two backends side by side finish well before three in turn.
With more than one job the last backend (torch) runs as `SHARDS` pytest
processes, each over every `SHARDS`-th test file (`--shard I/N`,
tests/progress_plugin.py), which whichever job is free takes next: JAX
runs beside TensorFlow, then both cores share torch's files and finish
together instead of one core idling while the other runs torch whole.
Each torch run gets `OMP_NUM_THREADS` = cores / jobs unless it is set: its
threads would otherwise spin on the cores the other jobs hold. TensorFlow's
runs get `TF_ENABLE_ONEDNN_OPTS=1` unless it is set (oneDNN's kernels on
AMD CPUs too, where TensorFlow leaves them off: 3x faster there on the
hierarchical VAE's evaluation).
Each concurrent run's output is printed whole when it finishes; meanwhile a
line per finished test file says how far each run is, e.g.
`[jax] 120/310 tests, 0 failed, 5:12 (tests/cli_test.py)` or
`[torch 2/4] ...`, and a failing test is named as soon as it fails. With
`--jobs 1` pytest's output streams as it runs, one backend after another.
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

# Longest first: with two jobs, JAX runs beside TensorFlow, then torch's
# shards go to whichever job frees up first.
BACKENDS = ("jax", "tensorflow", "torch")
SHARDS = 4  # pytest runs for the last backend when jobs run side by side
ROOT = Path(__file__).resolve().parents[1]
_print_lock = threading.Lock()
_started = {}  # run name -> time its pytest started


class Unit:
    """One pytest process: a backend, or shard `index` of `count` of one."""

    def __init__(self, backend, index=0, count=1):
        self.backend, self.index, self.count = backend, index, count
        self.name = backend if count == 1 else f"{backend} {index + 1}/{count}"
        self.file_stem = backend if count == 1 else f"{backend}-{index}"


def units(jobs):
    """The pytest processes of a run, in the order the jobs take them."""
    if jobs == 1:
        return [Unit(b) for b in BACKENDS]
    *first, last = BACKENDS
    return [Unit(b) for b in first] + [Unit(last, i, SHARDS) for i in range(SHARDS)]


class Progress:
    """Reads one run's progress file (tests/progress_plugin.py) as it grows."""

    def __init__(self, name, path):
        self.name, self.path = name, path
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
                out.append(f"[{self.name}] FAILED {node}")
        return out

    def summary(self, finished_file=None):
        seconds = int(time.time() - _started.get(self.name, time.time()))
        total = "?" if self.total is None else self.total
        line = (
            f"[{self.name}] {len(self.done)}/{total} tests, {self.failed} failed, "
            + (f"{self.skipped} skipped, " if self.skipped else "")
            + f"{seconds // 60}:{seconds % 60:02d}"
        )
        return f"{line} ({finished_file})" if finished_file else line


def watch(futures, tmp, interval=2.0):
    """Prints the runs' progress lines until every run has finished."""
    progress = [Progress(u.name, os.path.join(tmp, f"{u.file_stem}.progress")) for u in futures]
    closed = set()
    while True:
        done = {u.name for u, f in futures.items() if f.done()}
        for p in progress:
            lines = p.lines()
            if p.name in done and p.name not in closed:
                closed.add(p.name)
                lines.append(p.summary(p.file) + ", done")
            if lines:
                with _print_lock:
                    print("\n".join(lines), flush=True)
        if len(done) == len(futures):
            return
        time.sleep(interval)


def run(unit, args, tmp, jobs):
    """Runs one pytest process; returns its counts from the JUnit report."""
    backend = unit.backend
    stream = jobs == 1
    report = os.path.join(tmp, f"{unit.file_stem}.xml")
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERAS_VAE_PROGRESS_FILE": os.path.join(tmp, f"{unit.file_stem}.progress"),
        # tests/conftest.py's JAX compilation cache: one folder per run.
        "JAX_COMPILATION_CACHE_DIR": str(ROOT / ".pytest_cache/jax-compilation" / unit.file_stem),
    }
    if backend == "tensorflow" and "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        # TensorFlow turns oneDNN on by itself on Intel CPUs only. On an AMD
        # EPYC (AVX2) VM its kernels without it took 3x longer on
        # hvae_binarized_mnist's log_likelihood (32 against 11 s, 100 images,
        # k = 100), and tests/zoo/presets_metrics_test.py 8 of TF's 26
        # minutes; with it TF's tests run oneDNN's kernels on either machine.
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    if backend == "torch" and "OMP_NUM_THREADS" not in os.environ:
        # torch's OpenMP threads spin while they wait for a core that
        # another job holds: tests/models/vae_test.py (its 42 in-process
        # tests) took 34 s with two threads beside a busy core, 19 with one.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    # --durations: CI runs close to its time budget; show where it goes.
    # One cache folder per run: concurrent runs must not share files.
    # tests.progress_plugin: a line per finished test for `watch`.
    command = [
        sys.executable, "-m", "pytest", "-q", "--durations=15", f"--junitxml={report}",
        "-o", f"cache_dir=.pytest_cache/{unit.file_stem}", "-p", "tests.progress_plugin",
    ]
    if unit.count > 1:
        command += ["--shard", f"{unit.index}/{unit.count}"]
    command += args
    header = f"\n===== KERAS_BACKEND={backend}: {' '.join(command)}"
    start = _started[unit.name] = time.time()
    if stream:
        print(header, flush=True)
        code = subprocess.call(command, env=env, cwd=ROOT)
    else:
        with _print_lock:
            print(f"===== {unit.name}: started", flush=True)
        log_path = os.path.join(tmp, f"{unit.file_stem}.log")
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
    todo = units(jobs)
    print(f"{len(BACKENDS)} backends in {len(todo)} pytest runs, {jobs} at a time", flush=True)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {u: pool.submit(run, u, args, tmp, jobs) for u in todo}
            if jobs > 1:
                watch(futures, tmp)
            results = {u: futures[u].result() for u in todo}
    print(f"\n===== summary ({round(time.time() - start)} s in all, {jobs} at a time)")
    problems = []
    for backend in BACKENDS:
        mine = {u: c for u, c in results.items() if u.backend == backend}
        keys = ("tests", "failures", "errors", "skipped", "seconds")
        c = {k: sum(r[k] for r in mine.values()) for k in keys}
        passed = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
        # Exit 5 is pytest's "no tests collected": a shard may have none
        # of the selected tests; the backend as a whole must run some.
        codes = {u.name: r["exit_code"] for u, r in mine.items()}
        print(
            f"{backend:>10}: {passed} passed, {c['failures'] + c['errors']} failed, "
            f"{c['skipped']} skipped in {c['seconds']} s "
            + (f"({len(mine)} runs, exits {sorted(set(codes.values()))})" if len(mine) > 1
               else f"(exit {codes[backend]})")
        )
        for name, code in codes.items():
            if code not in (0, 5):
                problems.append(f"{name}: pytest exited {code}")
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
