"""Multi-device training gives the one-device result on the same global batch.

Several CPU devices must be configured before the backend starts, so each
backend's check runs in one subprocess (distribution_worker.py) that trains
on one device and on several and reports; the assertions are made here.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest

WORKER = Path(__file__).with_name("distribution_worker.py")
BACKEND = keras.backend.backend()
LOSS_ATOL = 1e-4  # per-batch logged losses are ~44 nats
WEIGHT_ATOL = 1e-6


def run_worker(*args, timeout=300):
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def worker_report(scenario):
    result = run_worker(scenario)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_matches_one_device(run):
    assert run["loss_diff"] < LOSS_ATOL, run
    assert run["weight_diff"] < WEIGHT_ATOL, run
    assert run["steps_trained"] == len(run["reference_losses"]) == 8
    # The comparison is meaningful: training moved the loss by far more
    # than the tolerance.
    assert np.ptp(run["reference_losses"]) > 100 * LOSS_ATOL


def check_jax():
    report = worker_report("jax")
    assert report["devices"] == 4
    run = report["data_parallel"]
    # Real sampling noise: the jitted step is one global-batch program, so
    # the sharded batch draws the noise one device draws. (Other noise
    # shows: a run with seed=1 differed from seed=0 by 0.046 nats.)
    assert_matches_one_device(run)
    assert run["batch_sharding"] == [4, 8, 8, 1]  # 16 examples over 4 devices
    assert run["variable_devices"] == 4  # weights replicated on each
    assert np.all(np.isfinite(run["evaluate"]))

    run = report["model_parallel"]  # 2 (batch) x 2 (model) mesh
    assert_matches_one_device(run)
    assert run["batch_sharding"] == [8, 8, 8, 1]
    assert run["kernel_specs"] == [
        "P('model', None)",
        "P('model', None)",
        "P(None, 'model')",
    ]


def check_tensorflow():
    report = worker_report("tensorflow")
    assert report["devices"] == 2
    # The hand-written loss is scaled by 1 / replicas before the gradient
    # (the optimizer sums replicas' gradients): with SGD, a missing scale
    # shows in the weights and the losses; logs are global-batch means.
    run = report["mirrored"]
    assert_matches_one_device(run)
    assert run["evaluate_diff"] < LOSS_ATOL

    # State updated inside the step: counter, seed generator, EMA codebook.
    assert report["vae_state"] == {"steps_trained": 8, "mismatches": []}
    assert report["vq_vae_state"] == {"steps_trained": 8, "mismatches": []}
    # An EMA of batch means equals the one-device EMA, whether declared
    # with aggregation="mean" or left at the default "none" (which without
    # the step's synchronization diverges per replica).
    for aggregation in ("mean", "none"):
        ema = report[f"ema_{aggregation}"]
        assert ema["mismatches"] == [], aggregation
        assert ema["ema_diff"] < 1e-6, aggregation
        assert ema["steps_trained"] == 8


def check_torch():
    import datetime

    import torch.distributed as dist

    from tests.training import distribution_worker as worker

    model = worker.make_vae(deterministic=True)
    initial = model.get_weights()
    reference = model, worker.train(model)
    # The test process serves the rendezvous store on a free port, and
    # keeps it until rank 1 has exited.
    store = dist.TCPStore(
        "127.0.0.1",
        0,
        2,
        is_master=True,
        wait_for_workers=False,
        timeout=datetime.timedelta(seconds=120),
    )
    with tempfile.TemporaryDirectory() as tmp:
        weights_file = os.path.join(tmp, "weights.npz")
        np.savez(weights_file, *initial)
        env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2"}
        log_path = os.path.join(tmp, "rank1.log")
        with open(log_path, "w") as log:  # a file: a full pipe would block
            rank1 = subprocess.Popen(
                [sys.executable, str(WORKER), "torch", "1", str(store.port), weights_file],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                losses, ddp_model = worker.ddp_train(0, 2, store, initial)
                rank1.wait(timeout=180)
            except subprocess.TimeoutExpired:
                pass  # reported below with rank 1's log
            finally:
                if rank1.poll() is None:
                    rank1.kill()
                    rank1.wait()
        with open(log_path) as log:
            assert rank1.returncode == 0, log.read()[-4000:]
    assert_matches_one_device(worker.compare(reference, (ddp_model, losses)))


CHECKS = {
    "jax": check_jax,
    "tensorflow": check_tensorflow,
    "torch": check_torch,
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", [BACKEND])
def test_data_parallel_matches_one_device(backend):
    """JAX: keras.distribution DataParallel / ModelParallel; TensorFlow:
    MirroredStrategy; torch: DistributedDataParallel around
    `compute_loss_terms` (Keras has no torch distribution backend)."""
    CHECKS[backend]()


@pytest.mark.parametrize("backend", [BACKEND])
def test_compute_loss_terms_outside_fit(backend):
    """What a hand-written loop (torch DDP, a custom JAX/TF loop) relies on:
    the loss terms are a differentiable function of the weights."""
    from tests.training.distribution_worker import X, make_vae

    model = make_vae()
    variables = model.trainable_variables
    if backend == "torch":
        import torch

        terms = model.compute_loss_terms(torch.from_numpy(X), training=True)
        terms["loss"].backward()
        gradients = [v.value.grad for v in variables]
    elif backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            terms = model.compute_loss_terms(X, training=True)
        gradients = tape.gradient(terms["loss"], [v.value for v in variables])
    else:
        import jax

        def loss_fn(values):
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                terms = model.compute_loss_terms(X, training=True)
            return terms["loss"], terms

        grad_fn = jax.jit(jax.grad(loss_fn, has_aux=True))
        gradients, terms = grad_fn([v.value for v in variables])
    assert set(terms) == {"loss", "reconstruction_loss", "kl_loss"}
    assert all(g is not None for g in gradients)
    gradients = [keras.ops.convert_to_numpy(g) for g in gradients]
    assert all(np.all(np.isfinite(g)) for g in gradients)
    assert sum(float(np.abs(g).sum()) for g in gradients) > 0
