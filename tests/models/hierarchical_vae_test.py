import logging

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import losses
from keras_vae.models import HierarchicalVAE
from tests.test_case import (
    assert_config_round_trip,
    assert_saved_model_round_trip,
    ring_backends,
    run_on_other_backends,
)

RNG = np.random.default_rng(0)
X = (RNG.random((32, 8, 8, 1)) > 0.6).astype("float32")
SHAPES = [(2, 2, 2), (4, 4, 3)]  # strides (4, 2) on 8x8 images


def small_hvae(**kwargs):
    args = dict(
        input_shape=(8, 8, 1),
        latent_channels=(2, 3),
        strides=(4, 2),
        hidden_channels=4,
        seed=0,
    )
    return HierarchicalVAE(**{**args, **kwargs})


def trained(model, epochs=1, batch_size=16):
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(X, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


@pytest.fixture(scope="module")
def model():
    return trained(small_hvae(), epochs=3)


def test_verbs_shapes_and_round_trips(model, tmp_path):
    z_means, z_log_vars = model.encode(X[:5])
    assert [z.shape[1:] for z in z_means] == SHAPES
    assert [z.shape[1:] for z in z_log_vars] == SHAPES
    assert model.latent_shapes() == SHAPES and model.latent_dim == 8 + 48
    # decode(encode(x)[0]) is the reconstruction; a partial list draws the rest.
    np.testing.assert_allclose(model.decode(z_means), model.reconstruct(X[:5]), atol=1e-6)
    top_only = model.decode(z_means[:1], seed=1)
    assert top_only.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(top_only, model.decode(z_means[:1], seed=1), atol=1e-6)
    samples = model.sample(5, seed=1)
    assert samples.shape == (5, 8, 8, 1) and 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_allclose(samples, model.sample(5, seed=1), atol=1e-6)
    cold = model.sample(5, temperature=0.0, seed=2)
    np.testing.assert_allclose(cold[0], cold[1], atol=1e-6)  # every group at its mean
    assert np.abs(model.sample(5, temperature=1.0, seed=2) - cold).max() > 1e-4
    assert model.elbo(X[:5], seed=0).shape == (5,)
    log_px = model.log_likelihood(X[:5], num_samples=20)
    assert log_px.shape == (5,) and np.all(np.isfinite(log_px))
    assert log_px.mean() >= model.elbo(X[:5], num_samples=20, seed=0).mean() - 1.0
    outputs = model(X[:5])
    assert set(outputs) == {"reconstruction", "z_mean", "z_log_var", "z"}
    assert tuple(outputs["z"].shape) == (5, model.latent_dim)
    assert_config_round_trip(model)
    loaded = assert_saved_model_round_trip(model, X[:5], "reconstruct", tmp_path)
    history = loaded.fit(X, epochs=1, batch_size=16, verbose=0)  # keeps training
    assert np.isfinite(history.history["loss"][-1])


def test_per_group_kl_is_nonnegative_and_sums_to_total(model):
    logs = model.evaluate(X, batch_size=16, verbose=0, return_dict=True)
    kls = [logs["kl_1"], logs["kl_2"]]
    assert min(kls) >= 0 and max(kls) > 1e-4  # trained: the posterior moved off the prior
    np.testing.assert_allclose(sum(kls), logs["kl_loss"], rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], logs["reconstruction_loss"] + logs["kl_loss"], rtol=1e-5
    )
    # The per-example ELBO is the same bound the logs report.
    np.testing.assert_allclose(
        -model.elbo(X, num_samples=8, seed=0).mean(),
        logs["reconstruction_loss"] + logs["kl_loss"],
        rtol=0.05,
    )


def test_free_bits_floor_each_group_and_collapse_is_logged(caplog):
    model = small_hvae(free_bits=50.0)
    with caplog.at_level(logging.WARNING, logger="keras_vae"):
        trained(model)
    logs = model.evaluate(X, batch_size=16, verbose=0, return_dict=True)
    # Both groups' KLs are far below 50 nats: each counts as 50 in the loss.
    assert logs["kl_1"] < 50 and logs["kl_2"] < 50
    np.testing.assert_allclose(logs["loss"], logs["reconstruction_loss"] + 2 * 50.0, rtol=1e-5)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "latent group 1 (kl_1" in messages and "latent group 2 (kl_2" in messages
    assert "collapsed" in messages


def test_kl_warmup_schedule_under_jit():
    model = trained(small_hvae(kl_warmup_steps=100))  # 2 steps
    logs = model.evaluate(X, batch_size=16, verbose=0, return_dict=True)
    weight = (2 + 1) / 100
    expected = logs["reconstruction_loss"] + weight * logs["kl_loss"]
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)


def test_iwae_with_one_sample_is_the_elbo_for_the_same_noise(model):
    config = {**model.get_config(), "objective": "iwae", "num_importance_samples": 1}
    iwae = HierarchicalVAE.from_config(config)
    iwae.set_weights(model.get_weights())
    iwae.seed_generator.state.assign(model.seed_generator.state)
    x = keras.ops.convert_to_tensor(X)
    elbo_terms = model.compute_loss_terms(x)
    iwae_terms = iwae.compute_loss_terms(x)
    # Same noise: the same samples, reconstruction and closed-form KLs.
    for name in ("reconstruction_loss", "kl_1", "kl_2"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(iwae_terms[name]),
            keras.ops.convert_to_numpy(elbo_terms[name]),
            rtol=1e-6,
        )
    # IWAE k=1 is the ELBO with a Monte Carlo KL, log q(z|x) - log p(z):
    # equal in expectation to the closed-form KL.
    mc_kl, kl = [], []
    for _ in range(20):
        terms = iwae.compute_loss_terms(x)
        terms = {k: keras.ops.convert_to_numpy(v) for k, v in terms.items()}
        mc_kl.append(float(terms["loss"] - terms["reconstruction_loss"]))
        kl.append(float(terms["kl_loss"]))
    assert abs(np.mean(mc_kl) - np.mean(kl)) < 0.1 * np.mean(kl) + 0.05


def test_iwae_objective_trains_and_bounds_tighten(model):
    iwae = trained(small_hvae(objective="iwae", num_importance_samples=3))
    logs = iwae.evaluate(X, batch_size=16, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"]) and set(logs) >= {"kl_1", "kl_2"}
    # One estimator: more importance samples give a tighter (higher) bound.
    k1 = model.log_likelihood(X, num_samples=1, seed=0).mean()
    k50 = model.log_likelihood(X, num_samples=50, seed=0).mean()
    assert k50 >= k1


def test_compiled_log_likelihood_matches_eager(model):
    eager = model.log_likelihood(X[:6], num_samples=30, seed=0, compiled=False, max_decode=64)
    compiled = model.log_likelihood(X[:6], num_samples=30, seed=0, compiled=True, max_decode=64)
    np.testing.assert_allclose(compiled, eager, atol=1e-4)


def test_serving_protocol_matches_the_verbs(model):
    to_numpy = keras.ops.convert_to_numpy
    z_means, z_log_vars = model.encode(X[:4])
    flat = np.concatenate([z.reshape(4, -1) for z in z_means], axis=1)
    encoded = model.encode_tensor(X[:4])
    np.testing.assert_allclose(to_numpy(encoded["z_mean"]), flat, atol=1e-6)
    decoded = to_numpy(model.decode_tensor(flat)["images"])
    np.testing.assert_allclose(decoded, model.reconstruct(X[:4]), atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(model.reconstruct_tensor(X[:4])["reconstruction"]), decoded, atol=1e-6
    )
    noise = RNG.normal(size=(3, model.latent_dim)).astype("float32")
    assert tuple(model.sample_from_noise(noise)["samples"].shape) == (3, 8, 8, 1)
    spec = model.serving_spec(score_num_samples=4)
    assert spec["score_noise"] == ((4, model.latent_dim), "normal")
    one = to_numpy(model.score_from_noise(X[:4], np.zeros((4, 1, model.latent_dim)))["score"])
    # Zero noise: z at the posterior means; the score is -log p(x|z) + KL.
    assert one.shape == (4,) and np.all(one > 0)
    many = RNG.normal(size=(4, 64, model.latent_dim)).astype("float32")
    score = to_numpy(model.score_from_noise(X[:4], many)["score"])
    np.testing.assert_allclose(
        score, -model.log_likelihood(X[:4], num_samples=64, seed=0), rtol=0.05
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (28, 28, 1), "strides": (8, 2)}, "stride 8 does not divide"),
        ({"strides": (2, 4)}, "non-increasing"),
        ({"input_shape": (12, 12, 1), "strides": (3, 2)}, "does not divide group 1"),
        ({"strides": (4,)}, "one entry per latent group"),
        ({"latent_channels": (2, 0)}, "latent_channels"),
        ({"objective": "vi"}, "objective"),
        ({"objective": "iwae", "num_importance_samples": 0}, "num_importance_samples"),
        ({"num_importance_samples": 5}, "objective='iwae'"),
        ({"objective": "iwae", "num_importance_samples": 2, "free_bits": 1.0}, "free_bits"),
        ({"posterior": "maf"}, "`posterior` must be one of"),
        ({"posterior": "iaf", "flow_steps": 0}, "needs `flow_steps` >= 1"),
        ({"flow_steps": 2}, "needs a flow posterior"),
        ({"posterior": "iaf", "flow_steps": -1}, "`flow_steps` must be >= 0"),
        ({"posterior": "iaf", "flow_hidden_dims": ()}, "flow_hidden_dims"),
        ({"num_autoregressive_layers": -1}, "num_autoregressive_layers"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_hvae(**kwargs)


def test_bad_inputs_and_latents_raise_clear_errors(model):
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        model.encode(np.full((2, 8, 8, 1), 255.0, "float32"))
    with pytest.raises(ValueError, match="group 2's latents of shape"):
        model.decode([np.zeros((2, 2, 2, 2)), np.zeros((2, 2, 2, 3))])
    with pytest.raises(ValueError, match="at most 2 latent groups"):
        model.decode([np.zeros((2, 2, 2, 2))] * 3)
    with pytest.raises(ValueError, match="num_samples"):
        model.log_likelihood(X[:2], num_samples=0)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=-1.0)
    for verb in (model.sample, lambda n: model.elbo(X[:2], num_samples=n)):
        for bad in (-1, 0, 2.5):
            with pytest.raises(ValueError, match="num_samples"):
                verb(bad)
    with pytest.raises(ValueError, match="max_decode"):
        model.log_likelihood(X[:2], num_samples=2, max_decode=0)
    z_top = np.zeros((2, 2, 2, 2), "float32")
    z_top[1, 0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="Group 1's latents contain 1 NaN"):
        model.decode([z_top])


def test_sample_draws_numpy_noise_the_same_on_every_backend(model):
    # The seed's noise is NumPy's, so `sample` equals the serving function fed
    # that noise: the same images on every backend.
    noise = np.random.default_rng(3).standard_normal((4, model.latent_dim)).astype("float32")
    expected = keras.ops.convert_to_numpy(model.sample_from_noise(noise)["samples"])
    np.testing.assert_allclose(model.sample(4, seed=3), expected, atol=1e-6)


def test_runner_builds_it_from_a_recipe_and_measures_each_group(model):
    from keras_vae.runner.families.image_vae import ImageVAE, group_metrics

    recipe = {"model_class": "HierarchicalVAE", "model": model.get_config(), "seed": 0}
    recipe["model"] = {k: v for k, v in recipe["model"].items() if k not in ("name", "seed")}
    built = ImageVAE().build_model(recipe, {})
    assert isinstance(built, HierarchicalVAE) and built.strides == (4, 2)
    with pytest.raises(ValueError, match="model_class"):
        ImageVAE().build_model({**recipe, "model_class": "Nope"}, {})
    metrics = group_metrics(model, X)
    assert len(metrics["active_units_per_group"]) == 2
    assert metrics["active_units"] == sum(metrics["active_units_per_group"]) <= model.latent_dim
    kls = model.group_kls(X, seed=0)
    assert kls.shape == (32, 2) and kls.min() >= 0
    np.testing.assert_allclose(metrics["test_kl_per_group"], kls.mean(axis=0), rtol=1e-5)


@pytest.fixture(scope="module")
def iaf_model():
    # With a PixelCNN head too, so that the cross-backend test covers every layer.
    model = small_hvae(
        posterior="iaf", flow_steps=2, flow_hidden_dims=(6,), num_autoregressive_layers=2
    )
    return trained(model, epochs=2)


def _flow_jacobian(model, group, z0, context, eps=1e-2):
    """`d z / d z0` of group `group`'s flow by central differences (NumPy),
    over the flattened `(h, w, c)` map of one example."""
    def flowed(z):
        out, _ = model._flow(group, z[None], context)
        return keras.ops.convert_to_numpy(out)[0].ravel().astype("float64")

    size = z0.size
    jacobian = np.zeros((size, size))
    for i in range(size):
        step = np.zeros(size, "float32")
        step[i] = eps
        plus, minus = z0 + step.reshape(z0.shape), z0 - step.reshape(z0.shape)
        jacobian[:, i] = (flowed(plus) - flowed(minus)) / (2 * eps)
    return jacobian


@pytest.mark.parametrize("flow_steps", [1, 2])
def test_iaf_flow_is_per_position_autoregressive_with_the_logged_log_det(flow_steps):
    model = small_hvae(posterior="iaf", flow_steps=flow_steps, flow_hidden_dims=(6,))
    rng = np.random.default_rng(flow_steps)
    for weight in model.flows[1].weights:  # A flow far from the identity.
        weight.assign(rng.normal(0.0, 0.5, weight.shape).astype("float32"))
    h, w, c = SHAPES[1]
    z0 = rng.standard_normal((h, w, c)).astype("float32")
    context = rng.standard_normal((1, h, w, model.context_channels)).astype("float32")
    jacobian = _flow_jacobian(model, 1, z0, context)
    _, log_det = model._flow(1, z0[None], context)
    log_det = keras.ops.convert_to_numpy(log_det)[0].reshape(h * w, c)
    blocks = jacobian.reshape(h * w, c, h * w, c)
    for p in range(h * w):
        off_position = np.delete(blocks[p], p, axis=1)
        np.testing.assert_allclose(off_position, 0.0, atol=1e-3)  # positions independent
        block = blocks[p, :, p, :]
        if flow_steps == 1:  # one MADE in order 1..c: triangular, the mask
            np.testing.assert_allclose(np.triu(block, 1), 0.0, atol=1e-3)
        # The change of variables: log|det| of the block is the logged sum.
        np.testing.assert_allclose(
            np.linalg.slogdet(block)[1], log_det[p].sum(), rtol=2e-2, atol=2e-2
        )


def test_iaf_posterior_density_bounds_and_round_trip(iaf_model, tmp_path):
    model = iaf_model
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((4, model.latent_dim)).astype("float32")
    draws = model._posterior_pass(X[:4], 1, noise=model._split(noise))
    _, groups = model._top_down(4, model._bottom_up(X[:4]), noise=model._split(noise))
    expected = 0.0
    for g in groups:  # log q = log N(z0) - log|det| of every group's flow
        gauss = keras.ops.convert_to_numpy(
            losses.diagonal_gaussian_log_prob(g["z0"], g["q_mean"], g["q_log_var"])
        )
        log_det = keras.ops.convert_to_numpy(g["log_det"]).sum(axis=-1)
        expected = expected + (gauss - log_det).reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(draws["log_qz"]), expected, rtol=1e-5)
    # The importance-sampled bound is tighter than the ELBO (Monte Carlo KLs).
    elbo = model.elbo(X[:16], num_samples=20, seed=0)
    assert model.log_likelihood(X[:16], num_samples=100).mean() > elbo.mean() + 0.1
    # encode gives the flowed codes, which decode back to the reconstruction.
    z_means, _ = model.encode(X[:4])
    np.testing.assert_allclose(model.decode(z_means), model.reconstruct(X[:4]), atol=1e-5)
    model.save(tmp_path / "iaf.keras")
    loaded = keras.saving.load_model(tmp_path / "iaf.keras", safe_mode=True)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.elbo(X[:4], seed=3), model.elbo(X[:4], seed=3), atol=1e-5)


@pytest.mark.slow
def test_export_signatures_answer(iaf_model, tmp_path):
    # The IAF model has the PixelCNN head too: decode and sample run the
    # pixel loop inside the exported graph.
    import tensorflow as tf

    model = iaf_model

    path = kv.export_saved_model(model, tmp_path / "hvae", score_num_samples=2)
    loaded = tf.saved_model.load(path)
    images = tf.constant(X[:3])
    out = loaded.signatures["serving_default"](images=images)
    np.testing.assert_allclose(out["reconstruction"], model.reconstruct(X[:3]), atol=1e-5)
    flat = loaded.signatures["encode"](images=images)["z_mean"].numpy()
    assert flat.shape == (3, model.latent_dim)
    decoded = loaded.signatures["decode"](z=tf.constant(flat))["images"]
    np.testing.assert_allclose(decoded, model.reconstruct(X[:3]), atol=1e-5)
    samples = loaded.signatures["sample"](
        num_samples=tf.constant(2), seed=tf.constant(3, tf.int64)
    )["samples"]
    assert tuple(samples.shape) == (2, 8, 8, 1)
    assert tuple(loaded.signatures["score"](images=images)["score"].shape) == (3,)


@pytest.mark.slow
def test_weights_and_keras_file_work_on_other_backends(iaf_model, tmp_path):
    # The IAF model holds every layer of the Gaussian one (its posterior nets
    # are one conv wider) and the flows: one subprocess covers both.
    reports = run_on_other_backends(
        iaf_model, X[:16], "reconstruct", tmp_path, atol=1e-5, step=-1
    )
    assert tuple(reports) == ring_backends(-1)
    for report in reports.values():
        assert report["keras_max_diff"] <= 1e-5 and report["weights_max_diff"] <= 1e-5


def _with_random_head(model, seed=0):
    """Gives the zero-initialised readout of the PixelCNN head random weights."""
    rng = np.random.default_rng(seed)
    kernel = model.autoregressive_output.kernel
    kernel.assign(rng.normal(0.0, 1.0, kernel.shape).astype("float32"))
    return model


def test_autoregressive_head_is_a_normalised_density_over_every_image():
    """With the latents fixed, p(x | z) of a PixelCNN head sums to 1 over all
    2^16 binary 4x4 images (it is only so if each pixel's logit ignores the
    pixels at and after it); the greedy decode is consistent with scoring."""
    model = _with_random_head(
        small_hvae(input_shape=(4, 4, 1), num_autoregressive_layers=3, hidden_channels=3)
    )
    bits = (np.arange(2**16)[:, None] >> np.arange(16)) & 1
    images = bits.reshape(-1, 4, 4, 1).astype("float32")
    rng = np.random.default_rng(0)
    latents = [
        rng.standard_normal((1,) + shape).astype("float32") for shape in model.latent_shapes()
    ]
    tiled = [np.repeat(z, len(images), axis=0) for z in latents]
    logits, _ = model._top_down(len(images), latents=tiled, pixels=images)
    log_px = keras.ops.convert_to_numpy(losses.bernoulli_log_likelihood(images, logits))
    np.testing.assert_allclose(np.exp(log_px.astype("float64")).sum(), 1.0, atol=1e-4)
    # Given the latents, a factorised head's logits are the same for every
    # image; the PixelCNN head's depend on the pixels before each one.
    logits = keras.ops.convert_to_numpy(logits)
    assert np.abs(logits - logits[:1]).max() > 1e-2
    # Greedy decoding: scoring the decoded image gives back its probabilities.
    probs = model.decode(latents)
    decoded = (probs > 0.5).astype("float32")
    scored, _ = model._top_down(1, latents=latents, pixels=decoded)
    scored = keras.ops.convert_to_numpy(keras.ops.sigmoid(scored))
    np.testing.assert_allclose(scored, probs, atol=1e-6)


def test_autoregressive_verbs_sample_noise_bound_and_round_trip(iaf_model, tmp_path):
    model = iaf_model
    assert np.abs(keras.ops.convert_to_numpy(model.autoregressive_output.kernel)).max() > 0
    assert model.noise_dim == model.latent_dim + 64
    assert model.serving_spec()["sample_noise"] == ((model.latent_dim + 64,), "normal")
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((4, model.latent_dim)).astype("float32")
    pixels = rng.standard_normal((4, 64)).astype("float32")
    # `sample` draws the latents' noise, then the pixels', from NumPy.
    expected = model.sample_from_noise(np.concatenate([noise, pixels], axis=1))["samples"]
    samples = model.sample(4, seed=3)
    np.testing.assert_allclose(samples, keras.ops.convert_to_numpy(expected), atol=1e-6)
    assert np.abs(samples - model.sample(4, seed=4)).max() > 1e-3
    z_means, _ = model.encode(X[:4])
    probs = model.reconstruct(X[:4])
    np.testing.assert_allclose(model.decode(z_means), probs, atol=1e-6)
    # Generation runs the head on each pixel's window (reach 3: 4 rows, 7
    # of the 8 columns, cropped layer by layer): scoring the greedy image on
    # the whole image gives the same logits.
    assert model.autoregressive_reach == 3
    greedy = (probs > 0.5).astype("float32")
    logits, _ = model._top_down(
        4, model._bottom_up(X[:4]), mean_latents=True, pixels=greedy
    )
    scored = keras.ops.convert_to_numpy(keras.ops.sigmoid(logits))
    np.testing.assert_allclose(scored, probs, atol=1e-6)
    # (The importance-sampled bound against the ELBO: the test above, on
    # this model.)
    model.save(tmp_path / "pixel.keras")
    loaded = keras.saving.load_model(tmp_path / "pixel.keras", safe_mode=True)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.sample(4, seed=5), model.sample(4, seed=5), atol=1e-6)
