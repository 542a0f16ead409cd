"""The cheap re-checks CI runs on the shipped presets (seconds each, on
every backend): each reloads a preset, re-measures the small fixed-seed
protocols stored in its metadata (`check_*` metrics) and raises
`AssertionError` naming the figure that differs. Used by tests/zoo/.
"""

from pathlib import Path

import numpy as np

import keras_vae as kv
from keras_vae.runner.families import sprites, text

# Presets measured for the README's tables but kept in the repository only,
# not in the wheel (the built-in presets' files already take most of the
# 100 MB a wheel may have, tests/wheel_test.py). Load one by its folder:
# `kv.from_preset("zoo/preset_files/NAME")`.
REPOSITORY_PRESETS_DIR = Path(__file__).resolve().parent / "preset_files"


def repository_presets():
    """The repository-only presets: name -> folder (a `Path`).

    >>> sorted(repository_presets())
    ['iwae_vae_binarized_mnist']
    """
    if not REPOSITORY_PRESETS_DIR.is_dir():
        return {}
    return {
        folder.name: folder
        for folder in sorted(REPOSITORY_PRESETS_DIR.iterdir())
        if (folder / "metadata.json").is_file()
    }


def recheck_sprites_metrics(preset, atol=0.02):
    """Recomputes a sprites preset's `check_mig`, `check_factor_vae`,
    `check_factor_vae_active_only` (the same votes, active latents only)
    and `check_dci` and compares them with its metadata.

    Backends differ slightly in floating point, which can move a few
    histogram bins or votes, hence `atol`. Returns
    `{name: (stored, recomputed)}`.

    Example:

    >>> recheck_sprites_metrics("beta_vae_sprites")  # doctest: +SKIP
    {'check_mig': (0.31, 0.31), ...}
    """
    model = kv.from_preset(preset)
    metadata = model.preset_metadata
    results = {}
    for name, function in sprites.METRIC_FUNCTIONS.items():
        key = "check_" + name
        arguments = metadata["metric_protocols"][key]
        results[key] = (metadata["metrics"][key], function(model, "sprites", **arguments))
    bad = {k: v for k, v in results.items() if abs(v[0] - v[1]) > atol}
    if bad:
        raise AssertionError(
            f"Preset {preset}: recomputed metrics differ from the metadata "
            f"by more than {atol}: {bad} (stored, recomputed)."
        )
    return results


def recheck_text_metrics(preset, rtol=0.01, atol=1e-4):
    """Re-measures a text preset's cheap figures on this backend.

    Loads the preset, re-encodes its reference sentences (within `atol`),
    checks that greedy reconstructions are the stored ones and reruns the
    `check_perplexity` protocol (k=20 importance samples on the first 200
    test sentences, fixed seed). Raises `AssertionError` naming the figure
    that differs (the perplexity by more than `rtol`, relative: other
    backends draw other importance samples). Returns
    `{"check_perplexity": (stored, recomputed)}`.

    Example:

    >>> recheck_text_metrics("text_vae_ptb")  # doctest: +SKIP
    {'check_perplexity': (101.2, 101.3)}
    """
    model = kv.from_preset(preset)
    metadata = model.preset_metadata
    reference = metadata["reference_encode"]
    if text.has_latent(model):
        z_mean, z_log_var = model.encode(reference["sentences"])
        np.testing.assert_allclose(z_mean, reference["z_mean"], atol=atol)
        np.testing.assert_allclose(z_log_var, reference["z_log_var"], atol=atol)
        stored = metadata["examples"]["reconstructions_greedy"]
        again = model.reconstruct(reference["sentences"])
        assert again == stored, f"Preset {preset}: reconstructions {again} != stored {stored}"
    ((test, _),) = kv.datasets.load("ptb", ("test",))
    metrics = metadata["metrics"]
    stored = metrics["check_perplexity"]
    recomputed = text.check_perplexity(
        model, test, metrics["check_sentences"], metrics["check_importance_samples"]
    )
    if abs(recomputed - stored) > rtol * stored:
        raise AssertionError(
            f"Preset {preset}: check_perplexity is {recomputed:.3f} here, "
            f"the metadata says {stored:.3f} (tolerance {rtol:.0%})."
        )
    return {"check_perplexity": (stored, recomputed)}
