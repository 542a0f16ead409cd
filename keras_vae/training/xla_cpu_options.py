"""XLA:CPU compiler options for the functions the library compiles on JAX.

JAX 0.10's XLA:CPU hands every matmul of a compiled function, and its
larger convolutions (a 3x3 one from 32 channels on, in a check), to YNNPACK
(`xla_cpu_experimental_ynn_fusion_type`). YNNPACK's convolutions ran at
about half the speed of XLA's own (Eigen) ones: with them,
`vae_binarized_mnist`'s importance-sampled evaluation took 1.7-1.9x
longer and the default conv VAE trained 15-20% slower (an AMD EPYC VM
with AVX2; on an AVX-512 VM, ARCH's stride-2 convolution ran at 76 GFLOP/s
in YNNPACK, 154 in Eigen; benchmarks/RESULTS.md). `options()` keeps
YNNPACK for the matmuls and gives the convolutions back to XLA.

It also turns off XLA:CPU's newer (MLIR) fusion emitters, whose code takes
longer to compile than the classic LLVM emitters' and ran no faster here
(AMD EPYC VM, idle, 3 runs each, alternated; benchmarks/RESULTS.md,
`benchmarks/fusion_emitters.py`): the default conv VAE's first fit (its
train step's compile) took 4.2-4.6 s instead of 6.2-7.9, it then trained
1,185-1,269 img/s against 1,003-1,147, and `vae_binarized_mnist`'s
k = 1000 evaluation of 64 images took 18.9-21.3 s against 21.0-26.5, with
the NLL equal to 2e-5 nats.

The options are passed per function (`jax.jit(..., compiler_options=)`),
never through `XLA_FLAGS`, so they touch nothing else in the process: the
JAX `Trainer` compiles the zoo models' train, test and predict functions
inside `keras_jit_options()`, which makes Keras' JAX trainer compile with
them, and so does `ImportanceScorer` (importance-sampled `log_likelihood`).
The compression codecs' model passes keep XLA's defaults: a stream must
decode with the very logits it was encoded with, and streams written
before these options would not.

`options()` is empty (nothing changes) off JAX, when JAX's default device
is not a CPU, when the installed XLA does not know the options (checked
once by compiling a one-line function with them), and when the environment
variable `KERAS_VAE_XLA_CPU_OPTIONS` is `0`.
"""

import contextlib
import functools
import os

import keras

XLA_CPU_OPTIONS_ENV = "KERAS_VAE_XLA_CPU_OPTIONS"
# YNNPACK for matmuls only: convolutions run XLA:CPU's own kernels; the
# classic fusion emitters, which compile faster.
CPU_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
    "xla_cpu_use_fusion_emitters": False,
}


def options():
    """The compiler options of the library's compiled functions: a dict
    for `jax.jit(..., compiler_options=)`, empty where they do not apply.

    >>> isinstance(options(), dict)
    True
    """
    if os.environ.get(XLA_CPU_OPTIONS_ENV, "").strip() == "0":
        return {}
    return dict(_supported_options())


@functools.cache
def _supported_options():
    if keras.backend.backend() != "jax":
        return {}
    import jax

    if jax.default_backend() != "cpu":
        return {}
    try:  # an XLA that does not know an option refuses to compile
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(1.0).compile()
    except Exception:
        return {}
    return CPU_OPTIONS


@contextlib.contextmanager
def keras_jit_options():
    """Within it, Keras' JAX trainer (`make_train_function`,
    `make_test_function`, `make_predict_function`) compiles with
    `options()`. Does nothing where `options()` is empty or where Keras'
    trainer does not compile with `jax.jit` (Flax NNX).

    >>> with keras_jit_options():
    ...     pass
    """
    compiler_options = options()
    trainer = _keras_jax_trainer() if compiler_options else None
    if trainer is None:
        yield
        return
    plain_jit = trainer.jit
    trainer.jit = functools.partial(plain_jit, compiler_options=compiler_options)
    try:
        yield
    finally:
        trainer.jit = plain_jit


def _keras_jax_trainer():
    """Keras' JAX trainer module, where it compiles with `jax.jit`, else `None`."""
    import jax
    from keras.src.backend.jax import trainer

    return trainer if getattr(trainer, "jit", None) is jax.jit else None
