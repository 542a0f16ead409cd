"""One backend's measurements for `benchmarks/gpu/session.py` (run in its own process).

Usage (the driver sets KERAS_BACKEND):

    python benchmarks/gpu/worker.py --results FILE --batches 128 1024 \\
        --round-s 1.5 --rounds 3 --eval-images 500 --eval-samples 1000

For each network (ARCH of issue 24, then the library's default conv VAE) and
each batch size (and ARCH at the first batch size with
`--steps-per-execution` steps per host call): compile and warm up with a
short `fit`, calibrate the step time, then time `--rounds` rounds of `fit`
over about `--round-s` seconds of images each; the figure is the median
round's images/s. Then the time of `log_likelihood(k=--eval-samples)` on a
random subset of the binarized MNIST test images (the test file is sorted
by digit: never a prefix): the second of two calls on the same images (the
first compiles). Every result is appended to `--results` as one JSON line
as soon as it is measured, so a killed worker keeps what it did.
"""

import argparse
import json
import os
import platform
import time

ARCH_PARAMETERS = 1_708_417  # issue 24's count for ARCH


def arch_networks(keras):
    """Issue 24's ARCH: its encoder body (the VAE adds the 32-d Gaussian
    heads) and its decoder (Bernoulli logits)."""
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    encoder = keras.Model(inputs, x, name="arch_encoder")

    z = keras.Input((32,))
    y = layers.Dense(256, activation="relu")(z)
    y = layers.Dense(7 * 7 * 64, activation="relu")(y)
    y = layers.Reshape((7, 7, 64))(y)
    y = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(y)
    y = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(y)
    y = layers.Conv2D(1, 3, padding="same")(y)
    decoder = keras.Model(z, y, name="arch_decoder")
    return encoder, decoder


def build(network, kv, keras, steps_per_execution=1):
    """A compiled `kv.VAE` (Adam 1e-3) with `network` `"arch"` or `"default"`."""
    if network == "arch":
        encoder, decoder = arch_networks(keras)
        model = kv.VAE(
            input_shape=(28, 28, 1), latent_dim=32, encoder=encoder, decoder=decoder, seed=0
        )
    elif network == "default":
        model = kv.VAE(input_shape=(28, 28, 1), latent_dim=32, seed=0)
    else:
        raise ValueError(f"Unknown network {network!r}: 'arch' or 'default'.")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=steps_per_execution)
    return model


def trainable_parameters(model):
    """Trainable weights' size (count_params also counts the `steps_trained`
    counter). The model must have been called (it is after a `fit`)."""
    import math

    return sum(math.prod(w.shape) for w in model.trainable_weights)


def tiled(x, n):
    """`n` images from `x`, repeating it when `n > len(x)`."""
    import numpy as np

    return x[:n] if n <= len(x) else np.resize(x, (n, *x.shape[1:]))


def fit_seconds(model, x, batch):
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=batch, verbose=0, shuffle=False)
    return time.perf_counter() - start


def train_rate(model, x_train, batch, args, steps_per_execution=1):
    """Median images/s over `args.rounds` timed `fit` rounds, after warm-up.

    Every `fit` runs a multiple of `steps_per_execution` steps (the model's),
    so that no call runs short.
    """
    import numpy as np

    def whole(steps):
        return max(1, -(-int(steps) // steps_per_execution)) * steps_per_execution

    start = time.perf_counter()
    fit_seconds(model, tiled(x_train, batch * whole(args.warmup_steps)), batch)  # compiles
    compile_s = time.perf_counter() - start
    calib_steps = whole(args.warmup_steps * 4)
    step_s = fit_seconds(model, tiled(x_train, batch * calib_steps), batch) / calib_steps
    steps = whole(min(max(args.round_s / step_s, args.min_steps), args.max_steps))
    x = tiled(x_train, batch * steps)
    rounds = [len(x) / fit_seconds(model, x, batch) for _ in range(args.rounds)]
    return {
        "images_per_s": float(np.median(rounds)),
        "rounds_images_per_s": [round(r, 1) for r in rounds],
        "steps_per_round": steps,
        "compile_and_warmup_s": round(compile_s, 2),
    }


def eval_time(model, x_test, args):
    """Seconds of `log_likelihood(k)` on a random test subset, second call."""
    import numpy as np

    rng = np.random.default_rng(0)
    subset = x_test[rng.choice(len(x_test), args.eval_images, replace=False)]
    start = time.perf_counter()  # the same shapes twice: the first call compiles
    model.log_likelihood(subset, num_samples=args.eval_samples)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    ll = model.log_likelihood(subset, num_samples=args.eval_samples)
    seconds = time.perf_counter() - start
    return {
        "eval_images": args.eval_images,
        "eval_samples": args.eval_samples,
        "seconds": round(seconds, 3),
        "first_call_s": round(first_s, 2),
        "projected_10k_images_s": round(seconds * 10000 / args.eval_images, 1),
        "mean_nll_untrained_nats": round(float(-np.mean(ll)), 2),
    }


def append(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def environment(keras):
    """The backend's device and versions."""
    backend = keras.backend.backend()
    info = {"backend": backend, "keras": keras.__version__, "python": platform.python_version()}
    if backend == "jax":
        import jax

        info.update(jax=jax.__version__, devices=[str(d) for d in jax.devices()])
    elif backend == "torch":
        import torch

        info.update(
            torch=torch.__version__,
            cuda=torch.cuda.is_available(),
            devices=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        )
    elif backend == "tensorflow":
        import tensorflow as tf

        info.update(
            tensorflow=tf.__version__,
            devices=[d.name for d in tf.config.list_physical_devices()],
        )
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="JSON-lines file to append to")
    parser.add_argument("--networks", nargs="+", default=["arch", "default"])
    parser.add_argument("--batches", nargs="+", type=int, default=[128, 1024])
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--round-s", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-steps", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--eval-images", type=int, default=500)
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=32,
        help="also time ARCH at the first batch size with this many steps per host call (1: skip)",
    )
    parser.add_argument("--eval-samples", type=int, default=1000)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras

    import keras_vae as kv

    backend = keras.backend.backend()
    append(args.results, {"kind": "environment", **environment(keras)})
    (x_train, _), (x_test, _) = kv.datasets.load("binarized_mnist", splits=("train", "test"))
    for network in args.networks:
        for batch in args.batches:
            model = build(network, kv, keras)  # fresh weights and optimizer state
            rate = train_rate(model, x_train, batch, args)
            if batch == args.batches[0]:
                params = trainable_parameters(model)
                record = {"kind": "parameters", "backend": backend, "network": network}
                if network == "arch":
                    record["matches_issue_24"] = params == ARCH_PARAMETERS
                append(args.results, {**record, "trainable_parameters": params})
            append(
                args.results,
                {"kind": "train", "backend": backend, "network": network, "batch": batch, **rate},
            )
        append(
            args.results,
            {
                "kind": "eval",
                "backend": backend,
                "network": network,
                **eval_time(model, x_test, args),
            },
        )
        if network == "arch" and args.steps_per_execution > 1 and backend != "torch":
            # Several steps per host call: what a small model needs on a GPU
            # (Keras's torch trainer refuses steps_per_execution > 1).
            batch, spe = args.batches[0], args.steps_per_execution
            rate = train_rate(build(network, kv, keras, spe), x_train, batch, args, spe)
            append(
                args.results,
                {
                    "kind": "train",
                    "backend": backend,
                    "network": network,
                    "batch": batch,
                    "steps_per_execution": spe,
                    **rate,
                },
            )
    append(args.results, {"kind": "worker_done", "backend": backend, "pid": os.getpid()})


if __name__ == "__main__":
    main()
