"""The GPU session of issue 24 part 5 and issue 21 part 4, in one fixed time budget.

Usage (what `benchmarks/gpu/session.sh` runs on the device machine):

    python benchmarks/gpu/session.py --out $OUT --budget-s 540
    python benchmarks/gpu/session.py --smoke --out /tmp/gpu_smoke   # CPU dry run, ~2 min

Three phases, each inside its share of `--budget-s` (the whole process ends
by then, `--margin-s` before it at the latest for the packing):

1. the machine: `nvidia-smi`, Python and package versions;
2. benchmarks, one process per backend (`jax` first, then `torch`, then
   `tensorflow` where installed), each killed at its share of `--bench-s`:
   training images/s of issue 24's ARCH network and of the default conv VAE
   at each `--batches`, and the time of `log_likelihood(k=1000)` on a random
   test subset (`benchmarks/gpu/worker.py`);
3. the remaining minutes train `hvae_binarized_mnist` on JAX with the
   project's runner, `python -m zoo.train hvae_binarized_mnist --run-dir
   zoo/training_state/hvae_binarized_mnist --output
   runs/hvae_binarized_mnist_preset --switch-backend` (the run folder is
   committed in the repository, so it travels with the working tree; it may
   have been trained on another backend: the CPU sessions train it on
   TensorFlow),
   stopped with SIGINT (the runner keeps its last finished epoch) before
   the budget ends. The run folder is then packed into
   `OUT/hvae_run.tar.gz` (split into `.partNN` files of 15 MiB if larger)
   for `benchmarks/gpu/restore.sh` to unpack here, so the next session
   (GPU or CPU, `KERAS_BACKEND=jax`) resumes it with the same command.

Every figure goes to `OUT/results.json` (rewritten after each phase) and
the whole output to `OUT/session.log`; the runner's own output to
`OUT/train.log`. At most 8 files come back from OUT: results.json,
session.log, train.log and up to 5 tar parts.
"""

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker.py")
PART_BYTES = 15 * 2**20  # files back from $OUT: 16 MiB each at most
MAX_PARTS = 5  # 8 files at most: results.json, session.log, train.log, parts
PACKAGES = ("keras", "jax", "jaxlib", "torch", "tensorflow", "numpy", "h5py", "optree")
TRAIN_PRESET = "hvae_binarized_mnist"
JAX_WEIGHT = 1.5  # JAX's share of the benchmark time against 1 for each other backend

# Tiny settings of the CPU dry run (`--smoke`): every phase runs, in ~2 min.
SMOKE = {
    "budget_s": 150,
    "bench_s": 100,
    "margin_s": 10,
    "min_train_s": 20,
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
    "train": [
        "--epochs",
        "2",
        "--train-images",
        "256",
        "--eval-samples",
        "10",
        "--eval-images",
        "16",
    ],
    "run_dir": "runs/hvae_smoke",
    "preset_out": "runs/hvae_smoke_preset",
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


def pack(folders, out_dir):
    """`folders` (those that exist) in one gzip tar under `out_dir`, split
    into parts of `PART_BYTES`. Returns a description for results.json."""
    folders = [f for f in folders if (ROOT / f).is_dir()]
    if not folders:
        return {"files": [], "note": "no run folder to pack"}
    for folder in folders:  # a lock left by a killed run names a pid of this machine
        (ROOT / folder / "run.lock").unlink(missing_ok=True)
    tar_path = Path(out_dir) / "hvae_run.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for folder in folders:
            tar.add(ROOT / folder, arcname=folder)
    data = tar_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) <= PART_BYTES:
        files = [tar_path.name]
    else:
        parts = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]
        if len(parts) > MAX_PARTS:
            tar_path.unlink()
            return {"files": [], "bytes": len(data), "error": "run folder too large to return"}
        files = []
        for i, part in enumerate(parts):
            name = f"{tar_path.name}.part{i:02d}"
            (Path(out_dir) / name).write_bytes(part)
            files.append(name)
        tar_path.unlink()
    return {"files": files, "bytes": len(data), "sha256": digest, "folders": folders}


def train_summary(run_dir):
    """What the run folder says of its progress (the runner's own files)."""
    run_dir = ROOT / run_dir
    summary = (
        {"files": sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())}
        if run_dir.is_dir()
        else {}
    )
    for path in sorted(run_dir.glob("*.json")) if run_dir.is_dir() else []:
        if path.name == "run.json" or path.stat().st_size > 100_000:
            continue
        try:
            summary[path.name] = json.loads(path.read_text())
        except ValueError:
            pass
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_out"), help="output folder")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU dry run of every phase")
    parser.add_argument("--budget-s", type=float, default=540.0, help="whole session, seconds")
    parser.add_argument("--bench-s", type=float, default=330.0, help="all benchmarks, seconds")
    parser.add_argument("--margin-s", type=float, default=45.0, help="kept for packing")
    parser.add_argument(
        "--min-train-s", type=float, default=60.0, help="skip training when less is left"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["jax", "torch", "tensorflow"],
        choices=["jax", "torch", "tensorflow"],
    )
    parser.add_argument("--no-train", action="store_true", help="benchmarks only")
    parser.add_argument(
        "--block-tf",
        action="store_true",
        help="make `import tensorflow` fail (a machine without it, as the GPU's)",
    )
    args = parser.parse_args(argv)
    args.worker = []
    args.train = []
    args.run_dir = "zoo/training_state/hvae_binarized_mnist"
    args.preset_out = "runs/hvae_binarized_mnist_preset"
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

    # 3. Train the hierarchical VAE on JAX with the runner, until the budget ends.
    train_limit = clock.left() - args.margin_s
    command = [
        sys.executable,
        "-m",
        "zoo.train",
        TRAIN_PRESET,
        "--run-dir",
        args.run_dir,
        "--output",
        args.preset_out,
        "--switch-backend",  # the carried run folder may come from a CPU run on TensorFlow
        *args.train,
    ]
    results["train"] = {
        "command": "KERAS_BACKEND=jax python " + " ".join(command[1:]),
        "limit_s": round(train_limit, 1),
    }
    if args.no_train or "jax" not in backends:
        say("training skipped" + ("" if args.no_train else ": JAX is not installed"))
    elif train_limit < args.min_train_s:
        say(f"training skipped: {train_limit:.0f}s left")
    else:
        say(
            f"training {TRAIN_PRESET} on JAX for at most {train_limit:.0f}s: "
            + results["train"]["command"]
        )
        save()
        rc, seconds, stopped = run_limited(
            command,
            {**env, "KERAS_BACKEND": "jax"},
            train_limit,
            out / "train.log",
            signal.SIGINT,
            grace_s=max(5, min(30, args.margin_s / 2)),
        )
        results["train"].update(returncode=rc, seconds=seconds, stopped=stopped)
        # The runner's line on Ctrl-C (keras_vae.runner.INTERRUPTED): the run folder
        # is consistent even if the process then dies at exit (seen once on the CPU:
        # JAX exited with SIGSEGV after this line).
        train_log = (out / "train.log").read_text(errors="replace")
        results["train"]["interrupt_handled"] = "run the same command again to resume" in train_log
        results["train"]["progress"] = train_summary(args.run_dir)
        results["train"]["packed"] = pack([args.run_dir, args.preset_out], out)
        say(
            f"training: returncode {rc} after {seconds}s; packed "
            f"{results['train']['packed'].get('files')}"
        )
    if blocker is not None:
        shutil.rmtree(blocker.parent, ignore_errors=True)
    save()
    say(f"done; results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
