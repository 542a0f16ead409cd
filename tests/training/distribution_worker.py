"""Multi-device training runs, one backend per process.

Usage: KERAS_BACKEND=jax python distribution_worker.py jax
       KERAS_BACKEND=tensorflow python distribution_worker.py tensorflow
       KERAS_BACKEND=torch python distribution_worker.py torch RANK PORT WEIGHTS

Device counts must be fixed before the backend starts (XLA_FLAGS for JAX,
logical devices for TensorFlow), hence a process of its own. Each scenario
trains the same tiny model on one device and on several, on the same
global batches, and prints one JSON line of measurements; the test
(distribution_test.py) makes the assertions. For torch the test process is
rank 0 of a two-process DDP group and this script rank 1.
"""

import json
import os
import sys

# Device counts must be set before the backend starts.
NUM_DEVICES = {"jax": 4, "tensorflow": 2, "torch": 2}
if __name__ == "__main__" and sys.argv[1] == "jax":
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={NUM_DEVICES['jax']}"
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_vae.models import VAE, GenerativeModel  # noqa: E402

X = (np.random.default_rng(0).random((64, 8, 8, 1)) > 0.5).astype("float32")
BATCH = 16
EPOCHS = 2
LEARNING_RATE = 0.05


class MeanSampling(keras.layers.Layer):
    """Deterministic stand-in for `Sampling`: returns the posterior mean.

    For exact one-device vs. several-device comparisons on TensorFlow and
    torch, whose replicas each draw noise for their own slice (JAX draws
    the global batch's noise, identical to one device: no stand-in there).
    """

    def call(self, inputs):
        return inputs[0]


class MovingAverage(GenerativeModel):
    """A dense regression whose step also updates an EMA of the batch mean:
    the kind of state (EMA codebooks) that diverges across replicas."""

    def __init__(self, aggregation="mean", **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.dense.build((None, 64))
        self.ema = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            aggregation=aggregation,
            name="ema",
        )
        self.built = True

    def compute_loss_terms(self, x, training=False):
        self.advance_step(training)
        x = ops.reshape(x, (ops.shape(x)[0], -1))
        if training:
            self.ema.assign(0.5 * self.ema + 0.5 * ops.mean(x))
        loss = ops.mean(ops.square(self.dense(x) - 1.0))
        return {"loss": loss}


def make_vae(deterministic=False, seed=0):
    keras.utils.set_random_seed(seed)
    model = VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4, 8), seed=seed)
    if deterministic:
        model.sampling = MeanSampling()
    return model


def train(model, x=X, **fit_kwargs):
    """Compiles with SGD (gradient scale shows in the weights) and fits;
    returns the per-batch logged losses."""
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))
    losses = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"]))
    )
    model.fit(
        x,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        verbose=0,
        callbacks=[record],
        **fit_kwargs,
    )
    return losses


def compare(reference, other):
    """Largest absolute differences of per-batch losses and of weights."""
    ref_model, ref_losses = reference
    model, losses = other
    return {
        "losses": losses,
        "reference_losses": ref_losses,
        "loss_diff": float(np.max(np.abs(np.subtract(losses, ref_losses)))),
        "weight_diff": max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(ref_model.get_weights(), model.get_weights())
        ),
        "steps_trained": int(ops.convert_to_numpy(model.steps_trained)),
    }


def run_jax():
    import jax

    from keras_vae.models import VAE as BaseVAE

    shardings = []

    class InspectedVAE(BaseVAE):
        # Records how the traced train batch is laid out over the devices.
        def compute_loss_terms(self, x, training=False):
            if training:
                shape = tuple(x.shape)
                jax.debug.inspect_array_sharding(
                    x,
                    callback=lambda s: shardings.append(list(s.shard_shape(shape))),
                )
            return super().compute_loss_terms(x, training)

    def run(seed=0):
        keras.utils.set_random_seed(seed)
        model = InspectedVAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4, 8), seed=seed)
        return model, train(model)

    report = {"devices": len(jax.devices())}
    # Real sampling noise: the jitted step is a global-batch program, so the
    # noise of the sharded batch equals the noise of the one-device batch.
    single = run()
    keras.distribution.set_distribution(keras.distribution.DataParallel())
    data_parallel = run()
    report["data_parallel"] = compare(single, data_parallel)
    report["data_parallel"]["batch_sharding"] = shardings[-1]
    model = data_parallel[0]
    report["data_parallel"]["variable_devices"] = len(
        model.trainable_variables[0].value.sharding.device_set
    )
    report["data_parallel"]["evaluate"] = model.evaluate(X, batch_size=BATCH, verbose=0)

    # Model parallel: batch over 2 devices, the dense heads' kernels split
    # over the 2 others.
    mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"])
    layout_map = keras.distribution.LayoutMap(mesh)
    layout_map["z_(mean|log_var)/kernel"] = ("model", None)
    layout_map["dense(_[0-9]+)?/kernel"] = (None, "model")
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
    )
    model_parallel = run()
    report["model_parallel"] = compare(single, model_parallel)
    report["model_parallel"]["batch_sharding"] = shardings[-1]
    report["model_parallel"]["kernel_specs"] = sorted(
        str(v.value.sharding.spec)
        for v in model_parallel[0].trainable_variables
        if "model" in str(v.value.sharding.spec)
    )
    return report


def run_tensorflow():
    import tensorflow as tf

    from keras_vae.training.tensorflow import replica_mismatches

    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * NUM_DEVICES["tensorflow"],
    )
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    report = {"devices": strategy.num_replicas_in_sync}

    def under_strategy(factory):
        with strategy.scope():
            model = factory()
            return model, train(model)

    # Gradient and log scale: deterministic model, SGD, same global batches.
    model = make_vae(deterministic=True)
    single = model, train(model)
    mirrored = under_strategy(lambda: make_vae(deterministic=True))
    report["mirrored"] = compare(single, mirrored)
    report["mirrored"]["evaluate_diff"] = float(
        np.max(
            np.abs(
                np.subtract(
                    single[0].evaluate(X, batch_size=BATCH, verbose=0),
                    mirrored[0].evaluate(X, batch_size=BATCH, verbose=0),
                )
            )
        )
    )

    # The real VAE (noise, seed generator, step counter): every replica's
    # copy of every variable must agree after training.
    model, _ = under_strategy(make_vae)
    report["vae_state"] = {
        "steps_trained": int(model.steps_trained.numpy()),
        "mismatches": replica_mismatches(model.variables),
    }

    # The VQ-VAE's EMA codebook, updated from each replica's own slice.
    from keras_vae.models import VQVAE

    model, _ = under_strategy(
        lambda: VQVAE(
            input_shape=(8, 8, 1),
            num_embeddings=8,
            embedding_dim=4,
            hidden_dims=(8,),
            num_residual_blocks=1,
            residual_hidden_dim=8,
            dead_code_threshold=1.0,
            seed=0,
        )
    )
    report["vq_vae_state"] = {
        "steps_trained": int(model.steps_trained.numpy()),
        "mismatches": replica_mismatches(model.variables),
    }

    # EMA of batch means, declared with and without an aggregation: both
    # give the one-device value (the step averages "none" state).
    single_ema = MovingAverage()
    train(single_ema)
    for aggregation in ("mean", "none"):
        model, _ = under_strategy(lambda: MovingAverage(aggregation=aggregation))
        report[f"ema_{aggregation}"] = {
            "ema_diff": abs(float(model.ema.numpy()) - float(single_ema.ema.numpy())),
            "mismatches": replica_mismatches(model.non_trainable_variables),
            "steps_trained": int(model.steps_trained.numpy()),
        }
    return report


def ddp_train(rank, world_size, store, weights):
    """One process of a data-parallel run with torch DDP (gloo, CPU): each
    rank trains on its slice of every global batch. Returns the losses
    logged like `fit`'s (running mean over the epoch) and the weights.

    `store` is a `torch.distributed.TCPStore` the test process serves. A
    FileStore is not used: its file is deleted when the first ranks' stores
    are destroyed, and a later access waits for it for the whole timeout.
    """
    import datetime
    import gc

    import torch
    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        store=store,
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        model = make_vae(deterministic=True)
        model.set_weights(weights)
        optimizer = keras.optimizers.SGD(LEARNING_RATE)

        class Objective(torch.nn.Module):
            # DDP syncs the gradients of `model`'s parameters in backward().
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, x):
                return self.model.compute_loss_terms(x, training=True)["loss"]

        ddp = torch.nn.parallel.DistributedDataParallel(Objective(model))
        shard = BATCH // world_size
        losses = []
        for _ in range(EPOCHS):
            total = 0.0
            for step, start in enumerate(range(0, len(X), BATCH)):
                local = X[start + rank * shard : start + (rank + 1) * shard]
                model.zero_grad()
                loss = ddp(torch.from_numpy(local))
                loss.backward()  # DDP averages the gradients over the ranks
                variables = model.trainable_variables
                with torch.no_grad():
                    optimizer.apply([v.value.grad for v in variables], variables)
                global_loss = loss.detach().clone()
                dist.all_reduce(global_loss)
                total += float(global_loss) / world_size
                losses.append(total / (step + 1))
        # Tear down in lockstep. CI once saw rank 1 hang for minutes after
        # returning from here (no Python frame below the call), most likely
        # in the implicit destruction of the DDP wrapper after rank 0 had
        # destroyed its group; it did not happen here in ~15 runs. So
        # each rank destroys its wrapper explicitly while both still serve
        # the group, then waits for the other before the group goes; a hang
        # left would show this frame in the traceback.
        del ddp
        gc.collect()
        dist.barrier()
        return losses, model
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    if sys.argv[1] == "torch":
        import datetime
        import faulthandler

        import torch.distributed as dist

        # A hang shows where it is in the log the test prints.
        faulthandler.dump_traceback_later(150, exit=True)
        rank, port, weights_file = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        with np.load(weights_file) as stored:
            weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
        store = dist.TCPStore(
            "127.0.0.1",
            port,
            NUM_DEVICES["torch"],
            is_master=False,
            timeout=datetime.timedelta(seconds=120),
        )
        ddp_train(rank, NUM_DEVICES["torch"], store, weights)
        print("rank", rank, "finished", flush=True)
        # Done and reported: skip the interpreter's teardown of torch's
        # threads, which has nothing left to do for this run.
        os._exit(0)
    else:
        print(json.dumps({"jax": run_jax, "tensorflow": run_tensorflow}[sys.argv[1]]()))
