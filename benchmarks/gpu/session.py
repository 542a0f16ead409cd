"""The GPU session of issue 24 part 5, in one fixed time budget.

Usage (what `benchmarks/gpu/session.sh` runs on the device machine):

    python benchmarks/gpu/session.py --out $OUT --budget-s 540
    python benchmarks/gpu/session.py --smoke --out /tmp/gpu_smoke   # CPU dry run, ~2 min

Three phases, each inside its share of `--budget-s` (the whole process ends
by then, `--margin-s` before it at the latest):

1. the machine: `nvidia-smi`, Python and package versions;
2. benchmarks, one process per backend (`jax` first, then `torch`, then
   `tensorflow` where installed), each killed at its share of `--bench-s`:
   training images/s of issue 24's ARCH network and of the default conv VAE
   at each `--batches`, and the time of `log_likelihood(k=1000)` on a random
   test subset (`benchmarks/gpu/worker.py`);
3. the remaining minutes measure the test NLL of `--nll-presets` on JAX at
   k = `--nll-samples` (5000: the estimator of the published figures the
   README sets beside them; the presets' own figures are k = 1000 on the
   CPU), each on the binarized MNIST test images in a random order, in
   chunks (`benchmarks/gpu/preset_nll.py`): a preset stopped by the time
   limit has a uniformly random subset measured, stated with its count.
   Their weights must travel: `prepare.sh` leaves the presets of
   `NLL_PRESETS` in the tree.

Every figure goes to `OUT/results.json` (rewritten after each phase) and
the whole output to `OUT/session.log`.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
NLL_WORKER = Path(__file__).with_name("preset_nll.py")
# The presets of phase 3, the most telling first; prepare.sh keeps their weights in the tree.
NLL_PRESETS = ("hvae_binarized_mnist", "vae_binarized_mnist")
PACKAGES = ("keras", "jax", "jaxlib", "torch", "tensorflow", "numpy", "h5py", "optree")
JAX_WEIGHT = 1.5  # JAX's share of the benchmark time against 1 for each other backend

# Tiny settings of the CPU dry run (`--smoke`): every phase runs, in ~2 min.
SMOKE = {
    "budget_s": 150,
    "bench_s": 100,
    "margin_s": 10,
    "min_nll_s": 20,
    "worker": [
        "--batches",
        "16",
        "--warmup-steps",
        "1",
        "--round-s",
        "0.1",
        "--rounds",
        "2",
        "--min-steps",
        "1",
        "--max-steps",
        "2",
        "--eval-images",
        "4",
        "--eval-samples",
        "4",
        "--steps-per-execution",
        "2",
    ],
    "nll": ["--num-images", "8", "--chunk", "4"],
    "nll_samples": 10,
}


class Clock:
    """Seconds since the start, and what is left of the budget."""

    def __init__(self, budget_s):
        self.start = time.monotonic()
        self.budget_s = budget_s

    def elapsed(self):
        return time.monotonic() - self.start

    def left(self):
        return self.budget_s - self.elapsed()


def plan_benchmarks(backends, seconds_left, bench_s):
    """The time limit of the first of `backends`' workers: its share of
    what is left of `bench_s` (JAX, measured first and the goal's backend,
    weighs `JAX_WEIGHT`, the others 1), never more than `seconds_left`.
    The driver asks again before each backend, so a backend that finishes
    early leaves its time to the next.

    >>> plan_benchmarks(["jax", "torch"], 500, 250)
    150.0
    >>> plan_benchmarks(["torch", "tensorflow"], 500, 240)
    120.0
    >>> plan_benchmarks(["torch"], 100, 240)
    100.0
    >>> plan_benchmarks([], 100, 240)
    0.0
    """
    if not backends:
        return 0.0
    weights = [JAX_WEIGHT if b == "jax" else 1.0 for b in backends]
    share = bench_s * weights[0] / sum(weights)
    return float(max(0.0, min(share, seconds_left)))


def installed_backends(requested):
    """The requested backends whose package is importable here, in order."""
    module = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}
    return [b for b in requested if importlib.util.find_spec(module[b]) is not None]


def versions():
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def command_output(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable: {error}"


def machine():
    return {
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "nvidia_smi": command_output(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                "--format=csv,noheader",
            ]
        ),
        "packages": versions(),
    }


def run_limited(command, env, limit_s, log, stop_signal=signal.SIGINT, grace_s=30):
    """Runs `command`, its output appended to `log`; at `limit_s` sends
    `stop_signal`, then SIGKILL `grace_s` later. Returns (returncode, seconds,
    stopped)."""
    start = time.monotonic()
    with open(log, "a") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stopped = False
        try:
            process.wait(timeout=max(limit_s, 1))
        except subprocess.TimeoutExpired:
            stopped = True
            os.killpg(process.pid, stop_signal)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return process.returncode, round(time.monotonic() - start, 1), stopped


def read_records(path):
    records = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass  # a line cut by the kill
    return records


def summarize_nll(records):
    """What one `preset_nll.py` worker's records say: the mean NLL (nats),
    its standard error, the images measured against those asked for.

    >>> summarize_nll([
    ...     {"kind": "nll_start", "preset": "p", "num_samples": 5000, "test_images": 10000},
    ...     {"kind": "nll_chunk", "images": 2, "sum_log_px": -160.0, "sum_sq_log_px": 12802.0,
    ...      "seconds": 1.0},
    ...     {"kind": "nll_chunk", "images": 2, "sum_log_px": -160.0, "sum_sq_log_px": 12802.0,
    ...      "seconds": 2.0},
    ... ])
    {'images': 4, 'nll': 80.0, 'nll_stderr': 0.5, 'seconds': 3.0, 'num_samples': 5000, \
'test_images_asked': 10000, 'complete': False}
    """
    chunks = [r for r in records if r.get("kind") == "nll_chunk"]
    n = sum(r["images"] for r in chunks)
    summary = {"images": n}
    if n:
        mean = sum(r["sum_log_px"] for r in chunks) / n
        variance = max(0.0, sum(r["sum_sq_log_px"] for r in chunks) / n - mean * mean)
        summary.update(
            nll=round(-mean, 4),
            nll_stderr=round(math.sqrt(variance / n), 4),
            seconds=round(sum(r["seconds"] for r in chunks), 1),
        )
    start = next((r for r in records if r.get("kind") == "nll_start"), None)
    if start is not None:
        summary.update(
            num_samples=start["num_samples"],
            test_images_asked=start["test_images"],
            complete=n == start["test_images"],
        )
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_out"), help="output folder")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU dry run of every phase")
    parser.add_argument("--budget-s", type=float, default=540.0, help="whole session, seconds")
    parser.add_argument("--bench-s", type=float, default=330.0, help="all benchmarks, seconds")
    parser.add_argument("--margin-s", type=float, default=20.0, help="kept at the end")
    parser.add_argument(
        "--min-nll-s", type=float, default=30.0, help="skip a preset's NLL when less is left"
    )
    parser.add_argument("--nll-presets", nargs="*", default=list(NLL_PRESETS))
    parser.add_argument("--nll-samples", type=int, default=5000, help="k of phase 3")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["jax", "torch", "tensorflow"],
        choices=["jax", "torch", "tensorflow"],
    )
    parser.add_argument(
        "--block-tf",
        action="store_true",
        help="make `import tensorflow` fail (a machine without it, as the GPU's)",
    )
    args = parser.parse_args(argv)
    args.worker = []
    args.nll = []
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if args.budget_s <= args.margin_s:
        parser.error(f"--budget-s ({args.budget_s}) must exceed --margin-s ({args.margin_s})")
    return args


def main(argv=None):
    args = parse_args(argv)
    clock = Clock(args.budget_s)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "session.log"
    results = {
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "smoke": args.smoke,
        "budget_s": args.budget_s,
    }

    def say(message):
        line = f"[{clock.elapsed():6.1f}s] {message}"
        print(line, flush=True)
        with open(log, "a") as f:
            f.write(line + "\n")

    def save():
        results["elapsed_s"] = round(clock.elapsed(), 1)
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    blocker = None
    if args.block_tf:
        blocker = Path(tempfile.mkdtemp()) / "tensorflow"
        blocker.mkdir()
        (blocker / "__init__.py").write_text(
            "raise ImportError('tensorflow is blocked (--block-tf)')\n"
        )
        env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), env["PYTHONPATH"]])

    # 1. The machine.
    results["machine"] = machine()
    results["data_dir"] = env.get("KERAS_VAE_DATA_DIR")
    say(f"machine: {json.dumps(results['machine'])}")
    save()

    # 2. Benchmarks, one process per backend.
    backends = [
        b for b in installed_backends(args.backends) if not (args.block_tf and b == "tensorflow")
    ]
    results["backends"] = backends
    results["benchmarks"] = []
    bench_start = clock.elapsed()
    for i, backend in enumerate(backends):
        spent = clock.elapsed() - bench_start
        limit = plan_benchmarks(backends[i:], clock.left() - args.margin_s, args.bench_s - spent)
        if limit < 10:
            say(f"{backend}: skipped, {limit:.0f}s left for benchmarks")
            results["benchmarks"].append({"kind": "skipped", "backend": backend})
            continue
        records = out / f"bench_{backend}.jsonl"
        say(f"{backend}: benchmarks, at most {limit:.0f}s")
        rc, seconds, stopped = run_limited(
            [sys.executable, str(WORKER), "--results", str(records), *args.worker],
            {**env, "KERAS_BACKEND": backend},
            limit,
            log,
            signal.SIGKILL,
            grace_s=5,
        )
        found = read_records(records)
        records.unlink(missing_ok=True)  # in results.json: keep OUT's file count low
        results["benchmarks"].extend(found)
        results.setdefault("workers", []).append(
            {"backend": backend, "returncode": rc, "seconds": seconds, "stopped": stopped}
        )
        for record in found:
            if record["kind"] == "train":
                say(
                    f"{backend} {record['network']} batch {record['batch']}"
                    f" steps_per_execution {record.get('steps_per_execution', 1)}: "
                    f"{record['images_per_s']:.0f} images/s"
                )
            elif record["kind"] == "eval":
                say(
                    f"{backend} {record['network']} log_likelihood k={record['eval_samples']}"
                    f" on {record['eval_images']} images: {record['seconds']}s"
                )
        say(f"{backend}: returncode {rc} after {seconds}s{' (stopped)' if stopped else ''}")
        save()

    # 3. The presets' test NLL on JAX, until the budget ends.
    results["nll"] = []
    if "jax" not in backends:
        say("presets' NLL skipped: JAX is not installed")
    for i, preset in enumerate(args.nll_presets):
        # The first preset may take all that is left; a preset that ends early leaves its
        # time to the next.
        limit = clock.left() - args.margin_s
        if limit < args.min_nll_s or "jax" not in backends:
            say(f"{preset}: NLL skipped, {limit:.0f}s left")
            results["nll"].append({"preset": preset, "images": 0, "skipped": True})
            continue
        records = out / f"nll_{i}.jsonl"
        command = [
            sys.executable,
            str(NLL_WORKER),
            "--results",
            str(records),
            "--preset",
            preset,
            "--num-samples",
            str(args.nll_samples),
            *args.nll,
        ]
        say(f"{preset}: NLL at k={args.nll_samples} on JAX, at most {limit:.0f}s")
        rc, seconds, stopped = run_limited(
            command, {**env, "KERAS_BACKEND": "jax"}, limit, log, signal.SIGKILL, grace_s=5
        )
        found = read_records(records)
        records.unlink(missing_ok=True)
        summary = {"preset": preset, **summarize_nll(found)}
        summary.update(returncode=rc, worker_seconds=seconds, stopped=stopped)
        results["nll"].append(summary)
        say(f"{preset}: {json.dumps(summary)}")
        save()
    if blocker is not None:
        shutil.rmtree(blocker.parent, ignore_errors=True)
    save()
    say(f"done; results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
