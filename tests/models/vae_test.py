import keras
import numpy as np
import pytest

from keras_vae import losses
from keras_vae.models import VAE, BetaVAE
from tests.test_case import (
    assert_config_round_trip,
    assert_saved_model_round_trip,
    ring_backends,
    run_on_other_backends,
)

RNG = np.random.default_rng(0)
X = (RNG.random((64, 8, 8, 1)) > 0.6).astype("float32")


def small_vae(**kwargs):
    args = dict(input_shape=(8, 8, 1), latent_dim=3, hidden_dims=(4, 8), seed=0)
    return VAE(**{**args, **kwargs})


def trained(model, x=X, epochs=1, batch_size=16, learning_rate=1e-3):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(x, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"architecture": "mlp", "hidden_dims": (16,)},
        {"likelihood": "gaussian"},
        {"likelihood": "gaussian", "decoder_variance": 0.1},
        {"kl_warmup_steps": 10, "free_bits": 0.5},
    ],
)
def test_verbs_shapes_and_serialization(kwargs, tmp_path):
    model = trained(small_vae(**kwargs))
    z_mean, z_log_var = model.encode(X[:5])
    assert z_mean.shape == z_log_var.shape == (5, 3)
    assert model.decode(z_mean).shape == (5, 8, 8, 1)
    assert model.reconstruct(X[:5]).shape == (5, 8, 8, 1)
    samples = model.sample(4, seed=1)
    np.testing.assert_allclose(samples, model.sample(4, seed=1))
    assert model.elbo(X[:5]).shape == (5,)
    assert model.log_likelihood(X[:5], num_samples=10).shape == (5,)
    outputs = model(X[:2])
    assert set(outputs) == {"reconstruction", "z_mean", "z_log_var", "z"}
    assert_config_round_trip(model)
    loaded = assert_saved_model_round_trip(model, X[:8], "encode", tmp_path)
    loaded.fit(X, epochs=1, batch_size=16, verbose=0)  # keeps training


def test_learned_decoder_variance_trains():
    model = small_vae(likelihood="gaussian")
    before = keras.ops.convert_to_numpy(model.decoder_log_var).copy()
    trained(model, epochs=2)
    after = keras.ops.convert_to_numpy(model.decoder_log_var)
    assert not np.allclose(before, after)
    fixed = trained(small_vae(likelihood="gaussian", decoder_variance=0.1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fixed.decoder_log_var), np.log(0.1), rtol=1e-6
    )


def test_user_networks_round_trip(tmp_path):
    encoder = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16, activation="tanh")]
    )
    decoder = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1))]
    )
    model = trained(small_vae(encoder=encoder, decoder=decoder))
    config = model.get_config()
    assert config["encoder"] is not None and config["decoder"] is not None
    assert_config_round_trip(model)
    assert_saved_model_round_trip(model, X[:8], "reconstruct", tmp_path)


def test_a_config_saved_before_decoder_upsampling_keeps_its_decoder():
    # keras-vae 0.1 saved default conv VAEs without `decoder_upsampling`;
    # its decoder upsampled by nearest neighbours, whose 3x3 kernels have
    # the same shapes as the transposed ones when the channels match.
    old = small_vae(decoder_upsampling="nearest", hidden_dims=(8, 8))
    config = old.get_config()
    del config["decoder_upsampling"]
    loaded = VAE.from_config(config)
    assert loaded.decoder_upsampling == "nearest"
    loaded.set_weights(old.get_weights())
    z = np.random.default_rng(0).normal(size=(4, old.latent_dim)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded.decoder(z)),
        keras.ops.convert_to_numpy(old.decoder(z)),
        atol=1e-6,
    )
    assert small_vae().get_config()["decoder_upsampling"] == "sub_pixel_transpose"
    names = [type(layer).__name__ for layer in loaded.decoder.layers]
    assert "UpSampling2D" in names and "SubPixelConvTranspose2D" not in names


def test_kl_warmup_schedule_under_jit():
    model = small_vae(kl_warmup_steps=100)
    trained(model)  # 4 steps
    logs = model.evaluate(X, batch_size=16, verbose=0, return_dict=True)
    weight = (4 + 1) / 100
    expected = logs["reconstruction_loss"] + weight * logs["kl_loss"]
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-4)


def test_free_bits_floor_each_dimension():
    model = small_vae(free_bits=50.0)
    model.compile(optimizer="adam")
    logs = model.evaluate(X, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["reconstruction_loss"] + 3 * 50.0, rtol=1e-4)


def test_log_likelihood_matches_exact_linear_gaussian():
    # x = W z + b + N(0, s I): log p(x) = log N(x; b, W W^T + s I), exactly.
    # With one latent the true posterior is Gaussian with a mean linear in x
    # and a constant variance, so a linear encoder can match it closely.
    encoder = keras.Sequential([keras.Input((3,)), keras.layers.Flatten()])
    decoder = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3)])
    model = VAE(
        input_shape=(3,),
        latent_dim=1,
        likelihood="gaussian",
        decoder_variance=0.5,
        architecture="mlp",
        encoder=encoder,
        decoder=decoder,
        seed=0,
    )
    data = RNG.normal(size=(2048, 3)).astype("float32")
    trained(model, x=data, epochs=15, batch_size=64, learning_rate=2e-2)
    w, b = [np.asarray(v, "float64") for v in decoder.get_weights()]
    cov = w.T @ w + 0.5 * np.eye(3)
    x = RNG.normal(size=(20, 3)).astype("float32")
    diff = x - b
    exact = -0.5 * (
        3 * np.log(2 * np.pi)
        + np.linalg.slogdet(cov)[1]
        + np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    )
    estimate = model.log_likelihood(x, num_samples=5000)
    np.testing.assert_allclose(estimate, exact, atol=0.02)
    # The ELBO is a lower bound (checked on average: each value is an MC estimate).
    assert model.elbo(x, num_samples=200).mean() <= exact.mean() + 0.01


def test_log_likelihood_is_chunking_invariant_in_distribution():
    model = trained(small_vae())
    a = model.log_likelihood(X[:20], num_samples=400, max_decode=64)
    # Two batches of 10 (one compiled shape), 400 draws in one chunk each.
    b = model.log_likelihood(X[:20], num_samples=400, batch_size=10, max_decode=4096)
    np.testing.assert_allclose(a.mean(), b.mean(), atol=0.5)
    assert a.mean() >= model.elbo(X[:20], num_samples=10).mean() - 0.5


def test_log_likelihood_is_the_estimator_over_its_draws_with_padding():
    # k = 10 over a batch of 4 with max_decode 12: 4 chunks of 3 draws in one
    # compiled loop, the last 2 padded and masked out. The value is the
    # log-mean-exp of the weights of the first 10 draws of the seed's noise.
    model = small_vae()
    noise = keras.random.normal((4, 3, 4, 3), seed=keras.random.SeedGenerator(5))
    noise = keras.ops.reshape(noise, (12, 4, 3))[:10]
    log_w = model.importance_log_weight_fn(keras.ops.convert_to_tensor(X[:4]))(noise)
    expected = keras.ops.convert_to_numpy(losses.importance_sampled_log_likelihood(log_w, axis=0))
    actual = model.log_likelihood(X[:4], num_samples=10, seed=5, max_decode=12)
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_log_likelihood_in_bfloat16_is_close_to_float32():
    model = small_vae()
    for _ in range(2):  # then again after training: the copy takes the new weights
        full = model.log_likelihood(X[:8], num_samples=20, seed=1)
        half = model.log_likelihood(X[:8], num_samples=20, seed=1, compute_dtype="bfloat16")
        np.testing.assert_allclose(half, full, atol=0.3)
        assert not np.array_equal(half, full)  # the bfloat16 decoder ran
        trained(model)
    copy = model._importance_scorer("bfloat16").scored_decoder
    for a, b in zip(copy.get_weights(), model.decoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="compute_dtype"):
        model.log_likelihood(X[:2], num_samples=2, compute_dtype="float16")


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((2, 8, 8), "float32"), "x\\[..., None\\]"),
        (np.zeros((2, 9, 8, 1), "float32"), "shape"),
        (np.zeros((2, 8, 8, 1), "uint8"), "dtype uint8"),
        (np.full((2, 8, 8, 1), 255.0, "float32"), "\\[0, 1\\]"),
        (np.full((2, 8, 8, 1), np.nan, "float32"), "NaN"),
    ],
)
def test_bad_inputs_raise_clear_errors(x, message):
    model = small_vae()
    model.compile(optimizer="adam")
    for call in (model.encode, lambda v: model.fit(v, verbose=0), model.log_likelihood):
        with pytest.raises(ValueError, match=message):
            call(x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latent_dim": 0}, "latent_dim"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"architecture": "rnn"}, "architecture"),
        ({"input_shape": (10, 10, 1)}, "divisible by 4"),
        ({"likelihood": "gaussian", "decoder_variance": -1.0}, "decoder_variance"),
        ({"decoder_upsampling": "bilinear"}, "decoder_upsampling"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_vae(**kwargs)


def test_bad_latents_raise_clear_errors():
    with pytest.raises(ValueError, match="latents of shape"):
        small_vae().decode(np.zeros((2, 5)))


@pytest.mark.slow
def test_weights_and_keras_file_work_on_other_backends(tmp_path):
    model = trained(small_vae())
    # Forward around the ring; the IAF test below goes the other way.
    reports = run_on_other_backends(model, X[:16], "encode", tmp_path, atol=1e-5)
    assert tuple(reports) == ring_backends(1)
    for report in reports.values():
        assert report["keras_max_diff"] <= 1e-5
        # No torch-only optimizer class elsewhere, no torch.compile on torch.
        assert "backend.torch" not in report["optimizer"] or report["backend"] == "torch"
        assert not (report["backend"] == "torch" and report["jit_compile"])


def test_a_seed_samples_the_same_images_on_every_backend():
    # The latents come from NumPy and the decoder's weights are set from
    # NumPy, so the images are a NumPy computation any backend must match.
    model = VAE(input_shape=(2, 3), latent_dim=2, architecture="mlp", hidden_dims=(5,))
    rng = np.random.default_rng(42)
    weights = [rng.normal(size=w.shape).astype("float32") for w in model.decoder.get_weights()]
    model.decoder.set_weights(weights)
    kernel, bias, out_kernel, out_bias = weights
    z = np.random.default_rng(7).standard_normal((3, 2)).astype("float32")
    logits = np.maximum(z @ kernel + bias, 0.0) @ out_kernel + out_bias
    expected = (1.0 / (1.0 + np.exp(-logits))).reshape(3, 2, 3)
    np.testing.assert_allclose(model.sample(3, seed=7), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.sample(3, seed=7, batch_size=2), expected, atol=1e-6)
    assert not np.allclose(model.sample(3, seed=8), expected)


# ----------------------------------------------------------------------
# Flow posterior (posterior="iaf") and the IWAE objective (issue 21).


def iaf_vae(**kwargs):
    return small_vae(posterior="iaf", flow_steps=2, flow_hidden_dims=(8,), **kwargs)


def test_iaf_posterior_verbs_and_keras_file(tmp_path):
    model = trained(iaf_vae())
    z_mean, z_log_var = model.encode(X[:5])
    assert z_mean.shape == z_log_var.shape == (5, 3)
    # encode's z_mean is the flow applied to the base Gaussian's mean.
    base_mean, base_log_var, context = model.encoder(X[:5])
    flowed, _ = model.flow(base_mean, context)
    np.testing.assert_allclose(z_mean, keras.ops.convert_to_numpy(flowed), atol=1e-5)
    np.testing.assert_allclose(z_log_var, keras.ops.convert_to_numpy(base_log_var), atol=1e-6)
    assert not np.allclose(z_mean, keras.ops.convert_to_numpy(base_mean), atol=1e-3)
    np.testing.assert_allclose(model.reconstruct(X[:5]), model.decode(z_mean), atol=1e-6)
    assert np.all(np.isfinite(model.elbo(X[:5], num_samples=2)))
    assert np.all(np.isfinite(model.log_likelihood(X[:5], num_samples=10)))
    assert set(model(X[:2])) == {"reconstruction", "z_mean", "z_log_var", "z"}
    config = assert_config_round_trip(model).get_config()
    assert (config["posterior"], config["flow_steps"], config["flow_hidden_dims"]) == (
        "iaf",
        2,
        (8,),
    )
    loaded = assert_saved_model_round_trip(model, X[:8], "encode", tmp_path)
    assert loaded.fit(X, epochs=1, batch_size=16, verbose=0).history["loss"]


def test_iaf_score_is_the_change_of_variables_elbo():
    # One noise draw by hand: z0 = mu + sigma * eps, z = f(z0), and
    # -ELBO = -log p(x|z) + log N(z0; mu, sigma^2) - log|det| - log N(z; 0, I).
    model = trained(iaf_vae())
    x = X[:4]
    noise = np.random.default_rng(3).standard_normal((4, 1, 3)).astype("float32")
    score = keras.ops.convert_to_numpy(model.score_from_noise(x, noise)["score"])
    mean, log_var, context = (keras.ops.convert_to_numpy(t) for t in model.encoder(x))
    z0 = mean + np.exp(0.5 * log_var) * noise[:, 0]
    z, log_det = (keras.ops.convert_to_numpy(t) for t in model.flow(z0, context))
    logits = keras.ops.convert_to_numpy(model.decoder(z)).reshape(4, -1)
    pixels = x.reshape(4, -1)
    log_px_z = np.sum(pixels * logits - np.logaddexp(0.0, logits), axis=1)
    log_q = np.sum(
        -0.5 * (np.log(2 * np.pi) + log_var + (z0 - mean) ** 2 / np.exp(log_var)) - log_det, 1
    )
    log_p = np.sum(-0.5 * (np.log(2 * np.pi) + z**2), axis=1)
    np.testing.assert_allclose(score, -(log_px_z + log_p - log_q), rtol=1e-4, atol=1e-3)


def test_iwae_with_one_sample_is_the_elbo_loss_for_the_same_noise():
    elbo_model = iaf_vae()
    iwae_model = iaf_vae(objective="iwae", num_importance_samples=1)
    iwae_model.set_weights(elbo_model.get_weights())
    elbo = elbo_model.compute_loss_terms(keras.ops.convert_to_tensor(X[:16]))
    iwae = iwae_model.compute_loss_terms(keras.ops.convert_to_tensor(X[:16]))
    numpy = {k: float(keras.ops.convert_to_numpy(v)) for k, v in iwae.items()}
    np.testing.assert_allclose(numpy["loss"], float(elbo["loss"]), rtol=1e-5)
    np.testing.assert_allclose(numpy["iwae_loss"], numpy["loss"], rtol=1e-6)
    np.testing.assert_allclose(
        numpy["loss"], numpy["reconstruction_loss"] + numpy["kl_loss"], rtol=1e-5
    )


def test_iwae_bound_is_above_the_elbo_on_a_trained_model():
    model = trained(small_vae(objective="iwae", num_importance_samples=4), epochs=2)
    x = keras.ops.convert_to_tensor(X[:16])
    z_mean, z_log_var, context = model.posterior_parameters(x)
    noise = np.random.default_rng(1).standard_normal((50, 16, 3)).astype("float32")
    z, log_q = model.draw_posterior(z_mean, z_log_var, context, noise=noise)
    log_px_z = model.samples_log_likelihood(x, z)
    iwae, elbo = (
        keras.ops.convert_to_numpy(t)
        for t in losses.importance_weighted_bound(
            log_px_z,
            losses.standard_normal_log_prob(z),
            keras.ops.sum(log_q, axis=-1),
            axis=0,
        )
    )
    assert np.all(iwae >= elbo)
    assert iwae.mean() > elbo.mean() + 1e-3
    # The evaluation verbs use the same estimator: k = 500 beats the ELBO.
    assert model.log_likelihood(X[:16], num_samples=500).mean() > model.elbo(
        X[:16], num_samples=50
    ).mean()


@pytest.mark.parametrize("posterior", ["gaussian", "iaf"])
def test_iwae_fit_step_trains_every_weight_and_logs_both_bounds(posterior):
    model = small_vae(
        posterior=posterior,
        flow_hidden_dims=(8,),
        objective="iwae",
        num_importance_samples=3,
        kl_warmup_steps=5,
    )
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(X[:16], epochs=1, batch_size=16, verbose=0).history
    assert sorted(history) == ["iwae_loss", "kl_loss", "loss", "reconstruction_loss"]
    assert all(np.isfinite(v[0]) for v in history.values())
    for weight, old in zip(model.trainable_weights, before):
        assert not np.allclose(keras.ops.convert_to_numpy(weight), old), weight.path
    if posterior == "iaf":  # Same samples: the IWAE bound is above their ELBO.
        elbo_loss = history["reconstruction_loss"][0] + history["kl_loss"][0]
        assert history["iwae_loss"][0] <= elbo_loss + 1e-4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"posterior": "iaf", "flow_steps": -1}, "`flow_steps` must be >= 0"),
        ({"flow_steps": 2}, "posterior='iaf'"),
        ({"posterior": "iaf", "flow_steps": 0}, "needs `flow_steps` >= 1"),
        ({"posterior": "planar"}, "`posterior` must be one of"),
        ({"posterior": "iaf", "flow_hidden_dims": ()}, "flow_hidden_dims"),
        ({"objective": "vimco"}, "`objective` must be one of"),
        ({"objective": "iwae", "num_importance_samples": 0}, "must be >= 1"),
        ({"num_importance_samples": 3}, "objective='iwae'"),
        ({"objective": "iwae", "free_bits": 1.0}, "free_bits"),
    ],
)
def test_bad_posterior_and_objective_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_vae(**kwargs)
    with pytest.raises(ValueError, match="BetaVAE"):
        BetaVAE(input_shape=(8, 8, 1), hidden_dims=(4, 8), objective="iwae")


@pytest.mark.slow
def test_iaf_vae_exports_and_loads_on_other_backends(tmp_path):
    import tensorflow as tf

    from keras_vae.export import export_saved_model

    model = trained(iaf_vae())
    path = export_saved_model(model, tmp_path / "export", score_num_samples=3, score_seed=2)
    loaded = tf.saved_model.load(path)
    images = tf.constant(X[:4])
    z_mean, z_log_var = model.encode(X[:4])
    out = loaded.signatures["encode"](images=images)
    np.testing.assert_allclose(out["z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(out["z_log_var"], z_log_var, atol=1e-5)
    reconstruction = loaded.signatures["serving_default"](images=images)["reconstruction"]
    np.testing.assert_allclose(reconstruction, model.reconstruct(X[:4]), atol=1e-5)
    noise = tf.random.stateless_normal((4, 3, 3), seed=[2, 1]).numpy()
    expected = keras.ops.convert_to_numpy(model.score_from_noise(X[:4], noise)["score"])
    score = loaded.signatures["score"](images=images)["score"].numpy()
    np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-3)
    (tmp_path / "cross").mkdir()
    reports = run_on_other_backends(
        model, X[:16], "encode", tmp_path / "cross", atol=1e-5, step=-1
    )
    assert tuple(reports) == ring_backends(-1)
    assert all(report["keras_max_diff"] <= 1e-5 for report in reports.values())
