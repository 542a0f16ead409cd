"""pythae and keras-vae side by side on issue 24's ARCH network (training).

One command (about 12 minutes on the idle 2-core development CPU):

    python benchmarks/pythae_side_by_side.py --out benchmarks/pythae_side_by_side

writes `<out>.md` (a markdown table) and `<out>.json` (every round).

Setup of pythae (once; its own venv that reuses the installed CPU torch):

    python -m venv --system-site-packages /work/venvs/pythae
    /work/venvs/pythae/bin/pip install pythae==0.1.2
    /work/venvs/pythae/bin/python -c "import torch, pythae; print(torch.__version__)"

`--system-site-packages` lets pip see the installed `torch 2.13.0+cpu`, which
satisfies pythae's `torch>=1.10.1`, so pip installs no torch wheel (check
that the last line prints `2.13.0+cpu`, not a CUDA build). `--pythae-python`
points at another venv's interpreter.

What is measured. Systems: pythae 0.1.2 (its `VAE`, BCE reconstruction, its
`BaseTrainer` epoch loop), keras-vae on the TensorFlow, JAX and torch
backends with ARCH, and keras-vae's default conv VAE
(`kv.VAE(input_shape=(28, 28, 1), architecture="conv", latent_dim=32)`) on
each backend. ARCH is issue 24's network (`arch_networks` in
`benchmarks/gpu/worker.py`, mirrored in torch below for pythae); both sides
check its 1,708,417 trainable parameters. Data: the first 12,800 statically
binarized MNIST training images (`keras_vae.datasets`, shuffled each epoch),
batch 128, Adam 1e-3. Each system runs in its own process: one warm-up epoch
(compilation, allocator growth), then `--epochs` timed epochs; the process's
images/s is the median timed epoch's, and its peak RSS is the child's
`ru_maxrss` from `os.wait4`. Systems alternate within each of `--rounds`
rounds, so load on a shared machine falls on all of them alike; the table
gives each system's median over rounds. Children inherit the environment
(`XLA_FLAGS`, thread settings): leave it as a user would have it.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH_PARAMETERS = 1_708_417
NUM_IMAGES = 12_800  # the default of --num-images
BATCH = 128
SYSTEMS = (
    ("pythae", "arch", "pythae"),
    ("tensorflow", "arch", "keras-vae TF"),
    ("jax", "arch", "keras-vae JAX"),
    ("torch", "arch", "keras-vae torch"),
    ("tensorflow", "default", "keras-vae TF"),
    ("jax", "default", "keras-vae JAX"),
    ("torch", "default", "keras-vae torch"),
)


def load_images(data_dir, with_keras_vae, num_images=NUM_IMAGES):
    """The first `num_images` binarized MNIST training images, (n, 28, 28, 1) float32.

    keras-vae processes load them with `keras_vae.datasets` (from `data_dir`,
    through `KERAS_VAE_DATA_DIR`); the pythae process reads the same file
    with NumPy, since importing keras_vae would load Keras and a backend
    into it (and into its RSS).
    """
    import numpy as np

    if with_keras_vae:
        os.environ["KERAS_VAE_DATA_DIR"] = data_dir
        import keras_vae as kv

        ((x, _),) = kv.datasets.load("binarized_mnist", splits=("train",))
    else:
        with np.load(os.path.join(data_dir, "binarized_mnist", "binarized_mnist.npz")) as f:
            x = f["train"]
    # A copy, so that the full split (float32 from keras_vae: 157 MB; uint8 in the
    # file) is freed here on both sides, not kept alive by a view into it.
    return np.array(x[:num_images], dtype="float32", copy=True).reshape(-1, 28, 28, 1)


def keras_vae_worker(network, args):
    import keras

    sys.path.insert(0, os.path.join(HERE, "gpu"))
    import worker  # benchmarks/gpu/worker.py: ARCH and the default VAE

    import keras_vae as kv

    x = load_images(args.data_dir, True, args.num_images)
    model = worker.build(network, kv, keras)
    epochs = []
    for _ in range(1 + args.epochs):  # the first is the warm-up
        start = time.perf_counter()
        model.fit(x, epochs=1, batch_size=BATCH, verbose=0, shuffle=True)
        epochs.append(len(x) / (time.perf_counter() - start))
    return epochs, worker.trainable_parameters(model)


def pythae_worker(args):
    import torch
    from pythae.data.preprocessors import DataProcessor
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from torch import nn

    class Encoder(BaseEncoder):  # ARCH's encoder, in torch (channels first)
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(1, 32, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(64 * 7 * 7, 256),
                nn.ReLU(),
            )
            self.mean = nn.Linear(256, 32)
            self.log_var = nn.Linear(256, 32)

        def forward(self, x):
            h = self.body(x)
            return ModelOutput(embedding=self.mean(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.dense = nn.Sequential(
                nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 7 * 7 * 64), nn.ReLU()
            )
            self.convs = nn.Sequential(  # "same" stride-2 transposed convs: 7 -> 14 -> 28
                nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 1, 3, padding=1),
            )

        def forward(self, z):
            h = self.dense(z).reshape(-1, 64, 7, 7)
            # pythae's "bce" loss takes probabilities: the sigmoid of ARCH's logits.
            return ModelOutput(reconstruction=torch.sigmoid(self.convs(h)))

    x = load_images(args.data_dir, False, args.num_images).transpose(0, 3, 1, 2).copy()  # NCHW
    torch.manual_seed(0)
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=32, reconstruction_loss="bce")
    model = VAE(config, encoder=Encoder(), decoder=Decoder())
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    processor = DataProcessor()  # as pythae's TrainingPipeline prepares arrays
    dataset = processor.to_dataset(processor.process_data(x))
    trainer = BaseTrainer(
        model,
        train_dataset=dataset,
        training_config=BaseTrainerConfig(
            output_dir=os.path.join(args.scratch, f"pythae_{os.getpid()}"),
            num_epochs=1 + args.epochs,
            per_device_train_batch_size=BATCH,
            learning_rate=1e-3,
            optimizer_cls="Adam",
            steps_saving=None,
            steps_predict=None,
            no_cuda=True,
        ),
    )
    trainer.prepare_training()  # what BaseTrainer.train does before its epochs
    epochs = []
    for epoch in range(1, 2 + args.epochs):  # pythae's own epoch loop
        start = time.perf_counter()
        trainer.train_step(epoch)
        epochs.append(len(x) / (time.perf_counter() - start))
    return epochs, parameters


def worker_main(args):
    if args.worker == "pythae":
        epochs, parameters = pythae_worker(args)
    else:
        epochs, parameters = keras_vae_worker(args.network, args)
    timed = sorted(epochs[1:])
    print(
        "RESULT "
        + json.dumps(
            {
                "warmup_images_per_s": round(epochs[0], 1),
                "epochs_images_per_s": [round(e, 1) for e in epochs[1:]],
                "images_per_s": timed[len(timed) // 2],
                "trainable_parameters": int(parameters),
            }
        ),
        flush=True,
    )


def run_child(backend, network, args):
    """Runs one system in a child process; its result and peak RSS (MiB)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = ["--data-dir", args.data_dir, "--epochs", str(args.epochs), "--scratch", args.scratch]
    common += ["--num-images", str(args.num_images)]
    if backend == "pythae":
        command = [args.pythae_python, __file__, "--worker", "pythae", *common]
    else:
        env["KERAS_BACKEND"] = backend
        command = [sys.executable, __file__, "--worker", backend, "--network", network, *common]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        # os.wait4 reaps the child itself and gives its own peak RSS.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{backend}/{network} failed:\n{stderr[-3000:]}")
    line = [x for x in stdout.splitlines() if x.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT ") :])
    result.update(peak_rss_mib=round(usage.ru_maxrss / 1024, 1), process_s=round(wall, 1))
    return result


def markdown(results, args, load):
    """The table: each system's median over rounds, images/s and peak RSS."""
    import statistics

    pythae = statistics.median(r["images_per_s"] for r in results["pythae/arch"])
    pythae_rss = statistics.median(r["peak_rss_mib"] for r in results["pythae/arch"])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; {now} UTC;"
        f" load average at start {load[0]:.2f}, at end "
        f"{os.getloadavg()[0]:.2f}; {args.rounds} rounds, {args.epochs} timed epoch(s) of "
        f"{args.num_images} images per process after a warm-up epoch, batch {BATCH}.",
        "",
        "| network | system | images/s (median) | x pythae | rounds (images/s) "
        "| peak RSS (MiB) | x pythae RSS | trainable parameters |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for backend, network, label in SYSTEMS:
        rows = results.get(f"{backend}/{network}")
        if not rows:
            continue
        rate = statistics.median(r["images_per_s"] for r in rows)
        rss = statistics.median(r["peak_rss_mib"] for r in rows)
        params = rows[0]["trainable_parameters"]
        rounds = ", ".join(f"{r['images_per_s']:.0f}" for r in rows)
        lines.append(
            f"| {'ARCH' if network == 'arch' else 'default conv VAE'} | {label} | {rate:,.0f} "
            f"| {rate / pythae:.2f} | {rounds} "
            f"| {rss:,.0f} | {rss / pythae_rss:.2f} | {params:,} |"
        )
    arch = {
        label: statistics.median(r["images_per_s"] for r in results[f"{b}/{n}"])
        for b, n, label in SYSTEMS
        if n == "arch" and b != "pythae" and results.get(f"{b}/{n}")
    }
    if arch:
        fastest = max(arch.values())
        lines += [
            "",
            f"ARCH: fastest keras-vae backend {fastest / pythae:.2f}x pythae (target >= 2); "
            "slowest / fastest keras-vae backend "
            f"{min(arch.values()) / fastest:.3f} (target >= 0.5).",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "pythae_side_by_side"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per process")
    parser.add_argument(
        "--num-images", type=int, default=NUM_IMAGES, help="images per epoch (issue 24: 12800)"
    )
    parser.add_argument("--pythae-python", default="/work/venvs/pythae/bin/python")
    parser.add_argument(
        "--data-dir", default=os.environ.get("KERAS_VAE_DATA_DIR", "/work/shared/data")
    )
    parser.add_argument("--scratch", default=os.path.join("/tmp", "pythae_side_by_side"))
    parser.add_argument(
        "--systems",
        nargs="+",
        default=[f"{b}/{n}" for b, n, _ in SYSTEMS],
        help="backend/network pairs, e.g. pythae/arch jax/arch tensorflow/default",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--network", default="arch", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)
    if "pythae/arch" not in args.systems:
        parser.error("--systems must include pythae/arch (the table is relative to it)")
    load = os.getloadavg()
    results = {key: [] for key in args.systems}
    for round_index in range(args.rounds):
        for key in args.systems:
            backend, network = key.split("/")
            result = run_child(backend, network, args)
            results[key].append(result)
            print(f"round {round_index + 1} {key}: {json.dumps(result)}", flush=True)
            if network == "arch" and result["trainable_parameters"] != ARCH_PARAMETERS:
                raise RuntimeError(
                    f"{key} has {result['trainable_parameters']} trainable parameters, "
                    f"ARCH has {ARCH_PARAMETERS}."
                )
    table = markdown(results, args, load)
    print(table)
    with open(args.out + ".md", "w") as f:
        f.write(table)
    with open(args.out + ".json", "w") as f:
        json.dump({"load_average_start": load, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
