"""The one custom train/test step of the zoo, written once per backend.

Keras core picks its trainer from the backend name at import; so does this
package. Each module defines `Trainer`, a mixin placed before `keras.Model`
in a model's bases. It needs two things from the model:

- `compute_loss_terms(x, training)`: a dict of scalar tensors with a `"loss"`
  entry (the objective) and named parts, written with `keras.ops` only;
- `update_loss_trackers(terms, x)`: updates one `keras.metrics.Mean` per
  term, weighted by the batch size of `x`, and returns the logs.

Anything else a step changes (seed generators, EMA codebooks, step counters)
is an ordinary non-trainable variable assigned inside `compute_loss_terms`.

Backend-neutral pieces of training live here too: `unpack_inputs` and
`check_fit_arguments` (`fit` and the steps take `x` only and refuse `y` /
`sample_weight` with a clear error) and
`NaNGuard` with `with_nan_guard` (the divergence guard `fit` adds).

The TensorFlow and JAX train steps run the model inside `narrow_convs()`
(`keras_vae.training.narrow_conv`): stride-1 convolutions to few channels,
such as a decoder's Bernoulli output layer, become one matmul and shifted
sums, faster on the CPU (`KERAS_VAE_NARROW_CONV=0` turns it off).

`compiles_decoders(num_draws)` and `CompiledDecoder(decoder)` serve
importance-sampled evaluation (`ImportanceScorer`): on torch, whose
`predict_on_batch` runs eagerly, a large evaluation decodes through
`torch.compile` (see `keras_vae.training.compiled_decoder`); TensorFlow and JAX
compile the whole scorer already, so there `compiles_decoders` is `False`.

On the JAX and PyTorch backends, importing this package sets glibc's
`malloc` to keep freed blocks in the heap (`tune_malloc`, see
`keras_vae.training.malloc_tuning`: a training step's buffers were
`mmap`ped afresh, and page-faulted, every step); `fit` gives the heap's
free pages back when it starts and ends (`release_free_memory`).
`KERAS_VAE_MALLOC_TUNING=0` turns it off.

`keras_jit_options()` is the context in which Keras compiles a model's
functions with the library's XLA:CPU options on JAX (convolutions on XLA's
own kernels, not YNNPACK's; `keras_vae.training.xla_cpu_options`,
`KERAS_VAE_XLA_CPU_OPTIONS=0` off): the JAX `Trainer` uses it, so do the
compiled helpers that are plain `keras.Model`s (`ImportanceScorer`); on
the other backends it does nothing.

`fori_loop` is `keras.ops.fori_loop`, except on TensorFlow, where a loop
called eagerly runs as one traced graph (`keras_vae.training.tensorflow`):
the models' sampling loops (a PixelCNN head's pixels, a Transformer
prior's codes) use it.

`inference()` is the context in which the models run eagerly outside
training (`encode`, `sample`, an uncompiled `log_likelihood`, ...): on
torch `torch.no_grad()`, so that no autograd graph is recorded (an eager
importance-sampling loop would otherwise keep every chunk's activations
alive until the loop ends); elsewhere it does nothing.
"""

import contextlib

import keras

from keras_vae.training.inputs import check_fit_arguments, unpack_inputs
from keras_vae.training.malloc_tuning import release_free_memory, tune_malloc
from keras_vae.training.nan_guard import NaNGuard, with_nan_guard
from keras_vae.training.xla_cpu_options import keras_jit_options

_BACKEND = keras.backend.backend()

# Before any JAX computation starts XLA's CPU client (see malloc_tuning).
MALLOC_TUNED = tune_malloc(_BACKEND)

if _BACKEND == "tensorflow":
    from keras_vae.training.tensorflow import Trainer, fori_loop
elif _BACKEND == "jax":
    from keras_vae.training.jax import Trainer
elif _BACKEND == "torch":
    from keras_vae.training.compiled_decoder import CompiledDecoder, compiles_decoders
    from keras_vae.training.torch import Trainer
else:
    raise ImportError(
        f"keras_vae supports the tensorflow, jax and torch backends; KERAS_BACKEND is {_BACKEND!r}."
    )
if _BACKEND != "tensorflow":
    # JAX compiles the loop itself; torch's eager steps are cheap.
    fori_loop = keras.ops.fori_loop

if _BACKEND == "torch":

    def inference():
        """`torch.no_grad()`: eager model calls record no autograd graph."""
        # Imported here: a module-level `import torch` would rebind
        # `keras_vae.training.torch` (the torch Trainer's module).
        import torch

        return torch.no_grad()

else:
    CompiledDecoder = None

    def inference():
        """Nothing to do on TensorFlow and JAX (gradients are explicit)."""
        return contextlib.nullcontext()

    def compiles_decoders(num_draws):
        """`False`: TensorFlow and JAX compile the whole scorer."""
        return False


__all__ = [
    "CompiledDecoder",
    "NaNGuard",
    "Trainer",
    "check_fit_arguments",
    "compiles_decoders",
    "fori_loop",
    "inference",
    "keras_jit_options",
    "release_free_memory",
    "unpack_inputs",
    "with_nan_guard",
]
