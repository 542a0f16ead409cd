"""Every built-in preset, and every repository-only one (zoo/preset_files:
measured for the README's tables, not in the wheel), re-measures its
headline figure in every CI run.

A stale or wrong `metadata.json` fails here: the test re-runs a cheap
version of the preset's evaluation (importance-sampled NLL with k=100 on 250
test images drawn at random, `image_vae.random_subset` with the stored subset
seed: never a prefix of the digit-sorted test file; the same seed as when the
preset was made; the figure is stored as `metrics.check_nll`) and the encoder
on stored images.

The NLL re-check costs 25,000 decoder passes per preset (10-70 s on a
2-core CPU), so each CI run measures each preset's NLL on one backend, in turn
(preset i of the sorted list on `NLL_BACKENDS[i % 3]`), and every backend
checks every preset's encoder, parameter count and metadata.
`KERAS_VAE_ALL_PAIRS=1` re-checks every NLL on every backend.
"""

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import presets
from keras_vae.runner.families.image_vae import random_subset
from tests.test_case import ALL_PAIRS
from zoo.rechecks import repository_presets
from zoo.render_tables import preset_metadata

# Monte Carlo noise of the k=100 estimate averaged over 250 images: other
# backends draw other samples, and five other draws (seeds 1-3 on
# TensorFlow, seed 0 on torch and JAX) were within 0.31 nats of the stored
# figure (seed 0 on TensorFlow) for the IWAE-trained preset, whose broad
# posterior is the noisiest, and within 0.12 for the others. 0.5 nats
# catches any model or metadata mix-up (a different checkpoint is off by
# several nats).
NLL_TOLERANCE = 0.5
ENCODE_ATOL = 1e-4
# JAX last: its pytest run is CI's longest (tests/run_backends.py runs it
# whole on one core while the others share the second).
NLL_BACKENDS = ("tensorflow", "torch", "jax")

# Presets evaluated by importance-sampled NLL (the VAE family). The VQ-VAE
# preset has no such figure; tests/zoo/vq_vae_preset_test.py re-checks it.
# Built-in presets load by name; repository-only ones (zoo/preset_files,
# not in the wheel) by their folder.
SOURCES = {
    **{name: name for name in presets.list_presets()},
    **{name: str(folder) for name, folder in repository_presets().items()},
}
PRESETS = sorted(
    name
    for name in SOURCES
    if "check_nll" in preset_metadata(name).get("metrics", {})
)


def as_vector(code, groups):
    """A VAE's code (one array) or a HierarchicalVAE's (a list of arrays, one
    per group) as one float64 vector."""
    parts = code if groups else [code]
    return np.concatenate([np.ravel(np.asarray(part, dtype="float64")) for part in parts])


def measures_nll_here(name):
    """Whether this backend re-measures `name`'s NLL in this run."""
    here = NLL_BACKENDS[PRESETS.index(name) % len(NLL_BACKENDS)] == keras.backend.backend()
    return here or ALL_PAIRS


def test_there_are_built_in_and_repository_presets():
    assert {"vae_binarized_mnist", "iwae_vae_binarized_mnist"} <= set(PRESETS)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_preset_figures_are_real(name):
    model = kv.from_preset(SOURCES[name])
    metadata = model.preset_metadata
    metrics = metadata["metrics"]
    ((x_test, _),) = kv.datasets.load(metadata["dataset"]["name"], ("test",))

    reference = metadata["reference_encode"]
    groups = isinstance(model, kv.HierarchicalVAE)  # a list of codes, one per group
    count = len(reference["z_mean"][0] if groups else reference["z_mean"])
    z_mean, z_log_var = model.encode(x_test[:count])
    for code, stored in ((z_mean, reference["z_mean"]), (z_log_var, reference["z_log_var"])):
        np.testing.assert_allclose(
            as_vector(code, groups), as_vector(stored, groups), atol=ENCODE_ATOL
        )

    # The importance-sampled bound is tighter than the ELBO.
    assert metrics["test_nll"] <= -metrics["test_elbo"]
    assert 0 <= metrics["active_units"] <= model.latent_dim
    assert metadata["parameter_count"] == model.count_params()
    if not measures_nll_here(name):
        return
    images = metrics["check_nll_images"]
    check = random_subset(x_test, images, seed=metrics["check_nll_subset_seed"])
    nll = -np.mean(
        model.log_likelihood(
            check,
            num_samples=metrics["check_nll_importance_samples"],
            seed=metrics["check_nll_seed"],
        )
    )
    assert abs(nll - metrics["check_nll"]) <= NLL_TOLERANCE, (
        f"{name}: NLL (k={metrics['check_nll_importance_samples']}, "
        f"{images} random images) is {nll:.3f} here, metadata says "
        f"{metrics['check_nll']:.3f}"
    )
