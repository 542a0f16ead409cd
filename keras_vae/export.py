"""Export a model as a TensorFlow SavedModel that TF Serving loads.

`export_saved_model(model, path)` writes `path/<version>/` (the layout TF
Serving's model server watches) with five signatures:

| signature | inputs | outputs |
| --- | --- | --- |
| `serving_default` | data batch (VAE: `images`) | `reconstruction` |
| `encode` | data batch | the model's codes (VAE: `z_mean`, `z_log_var`) |
| `decode` | codes (VAE: `z`) | `images` |
| `sample` | `num_samples` (int32 scalar), `seed` (int64 scalar) | `samples` |
| `score` | data batch | `score`: per-example anomaly score |

The model describes itself through a small protocol written in `keras.ops`
(see `GenerativeModel.serving_spec`): `encode_tensor`, `decode_tensor`,
`reconstruct_tensor`, `sample_from_noise` and `score_from_noise`. This module
draws the noise of `sample` and `score` with TensorFlow's *stateless* RNG
(`tf.random.stateless_normal` / `stateless_uniform`), so a request with the
same seed always returns the same samples and the same input always gets the
same score. Any model implementing the protocol exports, with no code here.

Requests are checked in the graph before any kernel runs (see
`serving_functions`): a wrong rank or size (one image without its batch
axis aborted the process before), an empty batch or invalid values fail
the request with an `InvalidArgumentError`; `score` instead gives an
invalid example (`model.screen_inputs_tensor`: NaN pixels, a Bernoulli
model's pixels outside `[0, 1]`, `<pad>` in a sentence) the score `+inf`.

Text models (`kv.TextVAE`) work on token ids in the protocol and name their
`Vocabulary` in `serving_spec()["vocabulary"]`; the export then adds the
string mapping in TensorFlow ops, so the signatures take `sentences` (a
string per example, split on whitespace, unknown words -> `<unk>`) and
return `sentences` where the model returns `token_ids`: `serving_default`
(greedy reconstruction), `encode`, `decode` (latents -> greedy sentences),
`sample` (`z ~ N(0, I)` decoded greedily) and `score` (nats per sentence).

Backends: the SavedModel is always traced on the TensorFlow backend, so it
contains plain TF ops (no `XlaCallModule` from jax2tf) and needs nothing but
TF Serving to run. A model living on the JAX or torch backend is saved to a
temporary `.keras` file and exported by a **subprocess** running
`KERAS_BACKEND=tensorflow python -m keras_vae.export` on it (Keras picks its
backend once per process, so this cannot happen in the same process). The
weights are the same; outputs match to float32 round-off.

Example:

>>> import keras_vae as kv
>>> model = kv.VAE(input_shape=(28, 28, 1), latent_dim=2)
>>> path = kv.export_saved_model(model, "/tmp/vae_export")  # doctest: +SKIP
>>> path  # doctest: +SKIP
'/tmp/vae_export/1'
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import keras

SIGNATURES = ("serving_default", "encode", "decode", "sample", "score")


def export_saved_model(model, path, version=1, score_num_samples=1, score_seed=0, overwrite=False):
    """Writes `model` as a SavedModel with serving signatures.

    Args:
        model: a model implementing the serving protocol (`kv.VAE` and the
            zoo's other models).
        path: str. The model's base directory; the SavedModel goes in
            `path/<version>/`, which TF Serving loads as version `version`.
        version: positive int. Defaults to `1`.
        score_num_samples: int. Posterior samples of the `score` signature:
            `1` gives the negative ELBO, `k > 1` the importance-sampled
            negative log-likelihood. Defaults to `1`.
        score_seed: int. Seed of the `score` signature's noise (fixed in the
            export, so scores are deterministic). Defaults to `0`.
        overwrite: bool. Replace an existing `path/<version>/`. Defaults to
            `False` (an existing version is an error).

    Returns:
        str: the version directory written.
    """
    version = int(version)
    if version < 1:
        raise ValueError(f"`version` must be a positive int, got {version}.")
    if int(score_num_samples) < 1:
        raise ValueError(f"`score_num_samples` must be >= 1, got {score_num_samples}.")
    for method in ("serving_spec", "encode_tensor", "decode_tensor"):
        if not hasattr(model, method):
            raise TypeError(
                f"{type(model).__name__} does not implement the serving "
                f"protocol (missing `{method}`); see keras_vae.export."
            )
    try:  # fail here, not in the subprocess, when the model cannot export
        model.serving_spec(score_num_samples=int(score_num_samples))
    except NotImplementedError as error:
        raise TypeError(str(error)) from None
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"Export path {path!r} exists and is not a directory.")
    target = os.path.join(path, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(
            f"{target!r} already exists; pick another `version` or pass overwrite=True."
        )
    os.makedirs(path, exist_ok=True)
    # Write next to the target, then rename: TF Serving never sees a half
    # written version directory.
    staging = tempfile.mkdtemp(prefix=f".{version}-", dir=path)
    try:
        staged = os.path.join(staging, "saved_model")
        if keras.backend.backend() == "tensorflow":
            _write_saved_model(model, staged, int(score_num_samples), int(score_seed))
        else:
            _export_in_subprocess(model, staged, int(score_num_samples), int(score_seed))
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export_in_subprocess(model, target, score_num_samples, score_seed):
    with tempfile.TemporaryDirectory() as tmp:
        keras_path = os.path.join(tmp, "model.keras")
        model.save(keras_path)
        module = type(model).__module__
        command = [
            sys.executable,
            "-m",
            "keras_vae.export",
            keras_path,
            target,
            "--score-num-samples",
            str(score_num_samples),
            "--score-seed",
            str(score_seed),
        ]
        if module not in ("__main__", "builtins") and not module.startswith("keras_vae."):
            command += ["--import", module]
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                "Exporting on the TensorFlow backend (subprocess) failed:\n" + result.stderr[-4000:]
            )


def _spec(tf, name, shape, dtype, batch=True):
    shape = ((None,) if batch else ()) + tuple(shape)
    return tf.TensorSpec(shape, tf.as_dtype(dtype), name=name)


def _noise(tf, shape, distribution, seed):
    if distribution == "normal":
        return tf.random.stateless_normal(shape, seed=seed)
    if distribution == "uniform":
        return tf.random.stateless_uniform(shape, seed=seed)
    raise ValueError(f"Unknown noise distribution {distribution!r}.")


def _checked_request(tf, tensor, spec):
    """`tensor` after the run-time checks of one request input.

    The signature's `TensorSpec` is not enforced when a SavedModel is
    called: a tensor of another rank or size reaches the kernels, which
    trust the graph's static shapes, and some abort the process (SIGABRT)
    instead of failing. `EnsureShape` checks the real shape first and fails
    the request with an `InvalidArgumentError`; a batched input must also
    hold at least one example.
    """
    tensor = tf.ensure_shape(tensor, spec.shape)
    if spec.shape.rank:
        count = tf.shape(tensor, out_type=tf.int64)[0]
        check = tf.debugging.assert_greater(
            count,
            tf.constant(0, tf.int64),
            message=f"`{spec.name}`: the request has no examples (an empty batch).",
        )
        with tf.control_dependencies([check]):
            tensor = tf.identity(tensor)
    return tensor


def _assert_valid(tf, valid, name, rule):
    """Fails the request unless every example of `valid` is true."""
    return tf.debugging.Assert(
        tf.reduce_all(valid),
        [
            f"`{name}` holds invalid examples (expected {rule}); "
            "the `score` signature scores such examples +inf instead. "
            "Invalid examples at batch indices:",
            tf.reshape(tf.where(tf.logical_not(valid)), [-1]),
        ],
        summarize=16,
    )


def serving_functions(model, score_num_samples=1, score_seed=0):
    """The five serving functions of `model`.

    TensorFlow backend only. Returns `(functions, resources)`: a dict from
    signature name to `(function, input_signature)`, as exported, and the
    TensorFlow resources (lookup tables) the functions use besides the
    model's variables.

    Every function checks its request in the graph and fails it with an
    `InvalidArgumentError` naming the problem: a wrong rank or size (e.g.
    one image without its batch axis), an empty batch, and invalid values
    (`model.screen_inputs_tensor`: NaN pixels, a Bernoulli VAE's pixels
    outside `[0, 1]`, a sentence with `<pad>`, `<bos>` or `<eos>` as a
    word; latents that are not finite, code indices out of range,
    `num_samples < 1`). `score` does not fail on invalid examples: it
    scores them `+inf` (most anomalous), so one bad image does not fail a
    batch. A wrong dtype is refused by the SavedModel itself.
    """
    import tensorflow as tf

    spec = model.serving_spec(score_num_samples=score_num_samples)
    in_name, in_shape, in_dtype = spec["inputs"]
    code_name, code_shape, code_dtype = spec["codes"]
    sample_shape, sample_dist = spec["sample_noise"]
    score_noise = spec.get("score_noise")
    rule = spec.get("valid_inputs", "valid inputs")
    input_spec = _spec(tf, in_name, in_shape, in_dtype)
    code_spec = _spec(tf, code_name, code_shape, code_dtype)
    to_model, from_model = (lambda x: x), (lambda outputs: outputs)
    resources = []
    if spec.get("vocabulary") is not None:
        input_spec = tf.TensorSpec((None,), tf.string, name="sentences")
        to_model, from_model, table = _text_codec(tf, spec["vocabulary"])
        resources.append(table)
    screen = getattr(model, "screen_inputs_tensor", None)
    if screen is None:  # a model outside the zoo: every example is valid

        def screen(inputs):
            return tf.ones(tf.shape(inputs)[:1], tf.bool), inputs

    def model_inputs(inputs):
        """Fails the request unless every example is valid."""
        inputs = to_model(_checked_request(tf, inputs, input_spec))
        valid, _ = screen(inputs)
        with tf.control_dependencies([_assert_valid(tf, valid, input_spec.name, rule)]):
            return tf.identity(inputs)

    def reconstruct(inputs):
        return from_model(model.reconstruct_tensor(model_inputs(inputs)))

    def encode(inputs):
        return from_model(model.encode_tensor(model_inputs(inputs)))

    def decode(codes):
        codes = _checked_request(tf, codes, code_spec)
        if codes.dtype.is_floating:
            valid = tf.reduce_all(
                tf.math.is_finite(tf.reshape(codes, [tf.shape(codes)[0], -1])), axis=1
            )
            checks = [_assert_valid(tf, valid, code_name, "finite values")]
        else:
            low, high = spec.get("code_range", (0, None))
            checks = [
                tf.debugging.assert_greater_equal(
                    codes, tf.cast(low, codes.dtype), message=f"`{code_name}` must be >= {low}."
                )
            ]
            if high is not None:
                checks.append(
                    tf.debugging.assert_less(
                        codes,
                        tf.cast(high, codes.dtype),
                        message=f"`{code_name}` must be < {high}.",
                    )
                )
        with tf.control_dependencies(checks):
            codes = tf.identity(codes)
        return from_model(model.decode_tensor(codes))

    def sample(num_samples, seed):
        num_samples = tf.ensure_shape(num_samples, ())
        seed = tf.ensure_shape(seed, ())
        check = tf.debugging.assert_greater(num_samples, 0, message="`num_samples` must be >= 1.")
        with tf.control_dependencies([check]):
            num_samples = tf.identity(num_samples)
        shape = tf.concat([[num_samples], tuple(sample_shape)], axis=0)
        seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
        return from_model(model.sample_from_noise(_noise(tf, shape, sample_dist, seed)))

    def score(inputs):
        # An invalid example is not an error here: it is scored +inf (most
        # anomalous), computed on a harmless stand-in so it cannot poison
        # the graph.
        valid, inputs = screen(to_model(_checked_request(tf, inputs, input_spec)))
        noise = None
        if score_noise is not None:
            noise_shape, noise_dist = score_noise
            shape = tf.concat([tf.shape(inputs)[:1], tuple(noise_shape)], axis=0)
            noise = _noise(tf, shape, noise_dist, tf.constant([score_seed, 1], tf.int64))
            noise = tf.ensure_shape(noise, (None,) + tuple(noise_shape))
        outputs = dict(model.score_from_noise(inputs, noise))
        score = outputs["score"]
        outputs["score"] = tf.where(valid, score, tf.constant(float("inf"), score.dtype))
        return outputs

    functions = {
        "serving_default": (reconstruct, [input_spec]),
        "encode": (encode, [input_spec]),
        "decode": (decode, [code_spec]),
        "sample": (
            sample,
            [
                tf.TensorSpec((), tf.int32, name="num_samples"),
                tf.TensorSpec((), tf.int64, name="seed"),
            ],
        ),
        "score": (score, [input_spec]),
    }
    return functions, resources


def _whitespace_pattern():
    """An RE2 pattern of runs of the characters `str.isspace()` accepts."""
    codes = [i for i in range(sys.maxunicode + 1) if chr(i).isspace()]
    return "[" + "".join(f"\\x{{{i:04X}}}" for i in codes) + "]+"


def _text_codec(tf, vocabulary):
    """TensorFlow versions of `vocabulary.tokenize` / `detokenize`.

    Returns `(to_ids, from_model, table)`: `to_ids` maps a string batch to padded
    id rows `<bos> w1 .. wn <eos> <pad>..`; `from_model` replaces a
    `token_ids` output by `sentences` (reading stops at the first `<eos>`
    or `<pad>`, `<bos>` is skipped); `table` is the word -> id table.
    """
    words = tf.constant(vocabulary.id_to_token)
    whitespace = _whitespace_pattern()
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(words, tf.range(vocabulary.size, dtype=tf.int32)),
        default_value=vocabulary.unk_id,
    )

    def to_ids(sentences):
        # Python's str.split() splits on every Unicode whitespace character
        # (U+00A0, U+2009, U+3000, \x1c..\x1f, ...); tf.strings.split only
        # on ASCII whitespace. Turn each run of the former into one space.
        sentences = tf.strings.regex_replace(sentences, whitespace, " ")
        ids = table.lookup(tf.strings.split(sentences))
        column = tf.ones(tf.stack([ids.nrows(), 1]), dtype=tf.int32)

        def edge(token_id):
            return tf.RaggedTensor.from_tensor(column * token_id)

        ids = tf.concat([edge(vocabulary.bos_id), ids, edge(vocabulary.eos_id)], axis=1)
        return ids.to_tensor(default_value=vocabulary.pad_id)

    def from_model(outputs):
        if "token_ids" not in outputs:
            return outputs
        outputs = dict(outputs)
        ids = tf.cast(outputs.pop("token_ids"), tf.int32)
        reading = tf.logical_and(
            tf.not_equal(ids, vocabulary.eos_id), tf.not_equal(ids, vocabulary.pad_id)
        )
        reading = tf.cast(tf.math.cumprod(tf.cast(reading, tf.int32), axis=1), tf.bool)
        keep = tf.logical_and(reading, tf.not_equal(ids, vocabulary.bos_id))
        kept = tf.ragged.boolean_mask(tf.gather(words, ids), keep)
        outputs["sentences"] = tf.strings.reduce_join(kept, axis=1, separator=" ")
        return outputs

    return to_ids, from_model, table


def _write_saved_model(model, target, score_num_samples, score_seed):
    archive = keras.export.ExportArchive()
    archive.track(model)
    functions, resources = serving_functions(model, score_num_samples, score_seed)
    for resource in resources:
        archive.track(resource)
    for name in SIGNATURES:
        fn, signature = functions[name]
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(target, verbose=False)


def main(argv=None):
    """`python -m keras_vae.export MODEL.keras PATH`: the subprocess route."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_vae.export",
        description="Writes a .keras model as a SavedModel (TF backend).",
    )
    parser.add_argument("model", help="a .keras file")
    parser.add_argument("target", help="the SavedModel directory to write")
    parser.add_argument("--score-num-samples", type=int, default=1)
    parser.add_argument("--score-seed", type=int, default=0)
    parser.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        help="module defining the model class (imported first)",
    )
    args = parser.parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        parser.error("run with KERAS_BACKEND=tensorflow")
    import importlib

    import keras_vae  # noqa: F401  (registers the zoo's classes)

    for module in args.modules:
        importlib.import_module(module)
    model = keras.models.load_model(args.model, compile=False)
    _write_saved_model(model, args.target, args.score_num_samples, args.score_seed)


if __name__ == "__main__":
    main()
