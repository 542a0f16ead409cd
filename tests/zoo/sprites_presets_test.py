"""The shipped sprites presets load on this backend and re-measure their metrics.

A stale or wrong `metadata.json` fails here: the test re-encodes the stored
reference sprites and reruns the cheap fixed-seed `check_*` protocols of
MIG, FactorVAE score (all latents and active latents only) and DCI stored in
the metadata
(`zoo.rechecks.recheck_sprites_metrics`, seconds per preset).
"""

import numpy as np
import pytest

import keras_vae as kv
from keras_vae import presets
from keras_vae.datasets import sprites
from zoo import rechecks, recipes

NAMES = ("beta_vae_sprites", "vae_sprites")


@pytest.mark.parametrize("name", NAMES)
def test_preset_was_made_by_the_shipped_recipe(name):
    metadata = presets.load_metadata(name)
    recipe = recipes.load(name)
    assert metadata["recipe"] == recipes.as_trained(recipe)
    assert metadata["steps_trained"] == recipe["steps"]
    assert metadata["eval_fraction"] == 1.0
    assert (presets.resolve_preset(name) / metadata["traversal"]["file"]).is_file()


def test_beta_vae_meets_the_targets():
    metrics = presets.load_metadata("beta_vae_sprites")["metrics"]
    assert metrics["mig"] >= 0.25 and metrics["factor_vae"] >= 0.75


@pytest.mark.parametrize("name", NAMES)
def test_factor_vae_is_reported_with_and_without_inactive_latents(name):
    metadata = presets.load_metadata(name)
    for key in ("factor_vae_active_only", "check_factor_vae_active_only"):
        assert 0.0 <= metadata["metrics"][key] <= 1.0
        protocol = metadata["metric_protocols"][key]
        assert protocol["exclude_inactive"] is True
        # The same votes as the all-latents figure, only who votes differs.
        plain = metadata["metric_protocols"][key.removesuffix("_active_only")]
        assert {k: v for k, v in protocol.items() if k != "exclude_inactive"} == plain


def test_beta_vae_beats_the_beta_1_baseline():
    beta, plain = (presets.load_metadata(n)["metrics"] for n in NAMES)
    assert beta["mig"] > plain["mig"] and beta["factor_vae"] > plain["factor_vae"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_preset_figures_are_real(name):
    model = kv.from_preset(name)
    reference = model.preset_metadata["reference_encode"]
    z_mean, z_log_var = model.encode(sprites.sprites_images(reference["classes"]))
    np.testing.assert_allclose(z_mean, reference["z_mean"], atol=1e-4)
    np.testing.assert_allclose(z_log_var, reference["z_log_var"], atol=1e-4)
    # Raises AssertionError naming the metric if a figure is off.
    checks = rechecks.recheck_sprites_metrics(name)
    assert set(checks) == {
        "check_mig",
        "check_factor_vae",
        "check_factor_vae_active_only",
        "check_dci",
    }
