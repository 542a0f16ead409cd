"""The `vq_vae_mnist` preset loads on this backend and re-measures its figures.

A stale or wrong `metadata.json` fails here: the test re-runs the cheap
version of the preset's evaluation stored in `metrics.check_*` (MSE, raw and
clipped to [0, 1], and prior bits per code on the first 1000 MNIST test
images, which are in the file's mixed-digit order; all deterministic) and
checks the codes of the stored reference images and the codebook figures'
conventions.
"""

import numpy as np
import pytest

import keras_vae as kv
from keras_vae.runner.families.vq_vae import code_statistics, mean_squared_errors

NAME = "vq_vae_mnist"


@pytest.mark.slow
def test_vq_vae_preset_figures_are_real():
    model = kv.from_preset(NAME)
    assert isinstance(model, kv.VQVAE) and model.prior is not None
    metadata = model.preset_metadata
    metrics = metadata["metrics"]
    ((x_test, _),) = kv.datasets.load("mnist", ("test",))

    reference = np.asarray(metadata["reference_encode"]["encoding_indices"])
    codes = model.encode(x_test[: len(reference)])
    # Ties between codes are measure-zero; allow one flipped code per image.
    assert np.mean(codes == reference) >= 1 - 1 / reference[0].size

    check = x_test[: metrics["check_images"]]
    mse, mse_clipped = mean_squared_errors(model, check)
    np.testing.assert_allclose(mse, metrics["check_mse"], rtol=0.02)
    np.testing.assert_allclose(mse_clipped, metrics["check_mse_clipped"], rtol=0.02)
    assert mse_clipped <= mse  # clipping to the data's range only helps
    bits = model.prior.bits_per_code(model.encode(check))
    np.testing.assert_allclose(bits, metrics["check_prior_bits_per_code"], rtol=0.01)
    stats = code_statistics(model.encode(check), 128)
    assert stats["usage"] > 0.5
    assert metrics["test_codebook_usage"] >= 0.9
    # "Used" at a tenth of the uniform share of the 10k x 49 positions.
    positions = metrics["test_images"] * reference[0].size
    assert metrics["test_code_positions"] == positions
    assert metrics["usage_threshold_positions"] == np.ceil(0.1 * positions / 128)
    assert metrics["test_codes_used_thresholded"] <= metrics["test_codes_used"]
    assert metrics["test_codebook_usage_thresholded"] >= 0.9
    assert metadata["parameter_count"] == model.count_params()
    samples = model.sample(4, seed=0)
    assert samples.shape == (4, 28, 28, 1) and np.all(np.isfinite(samples))
