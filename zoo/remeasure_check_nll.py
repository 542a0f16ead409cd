"""Re-measures the CI check figure of binarized-MNIST presets from their
shipped weights.

Usage:

    python -m zoo.remeasure_check_nll PRESET [PRESET ...]

PRESET is a built-in preset's name, a repository-only preset's name
(`zoo/preset_files`) or a preset folder. Each preset's `check_nll` (the
importance-sampled NLL that tests/zoo/presets_metrics_test.py re-measures in
every CI run) is measured again with the runner's current protocol
(`keras_vae.runner.families.image_vae.check_nll_metrics`: k=100 on
`CHECK_IMAGES` test images drawn at random) and written into the preset's
`metadata.json` (atomically), with a `check_nll_note` that says when, on
which backend and what it replaced; a built-in preset's registry hash is
updated too (`keras_vae.presets.register_builtin`). For when the protocol
changes: the model, its weights and its headline figures stay as they are.
"""

import argparse
import sys
import time
from pathlib import Path

import keras

from keras_vae import datasets, presets
from keras_vae.runner.families.image_vae import CHECK_SUBSET_SEED, check_nll_metrics
from keras_vae.runner.files import write_json
from zoo.rechecks import repository_presets


def remeasure(preset):
    """Re-measures `preset`'s `check_nll` and rewrites its metadata (and,
    for a built-in preset, its registry hash). Returns `(old, new)` metrics."""
    builtin = preset in presets.registry()
    if builtin:
        folder = presets.zoo_dir() / preset
    else:
        folder = Path(repository_presets().get(preset, preset))
    # A built-in preset loads by name: its files are checked against the registry.
    model = presets.from_preset(preset if builtin else str(folder))
    metadata = model.preset_metadata
    old = metadata["metrics"]
    if "check_nll" not in old:
        raise ValueError(f"{preset} stores no check_nll (not an importance-sampled VAE preset).")
    ((x_test, _),) = datasets.load(metadata["dataset"]["name"], ("test",))
    new = check_nll_metrics(model, x_test)
    earlier = metadata.get("check_nll_note")
    metadata["metrics"] = {**old, **new}
    metadata["check_nll_note"] = (
        f"check_nll: k={new['check_nll_importance_samples']} on {new['check_nll_images']} test "
        f"images drawn at random (keras_vae.runner.families.image_vae.random_subset, seed "
        f"{CHECK_SUBSET_SEED}), re-measured from the shipped weights on {keras.backend.backend()} "
        f"with `python -m zoo.remeasure_check_nll` ({time.strftime('%Y-%m-%d', time.gmtime())}); "
        f"it replaced {old['check_nll']:.2f} nats on {old['check_nll_images']} random images."
        + (f" Before: {earlier}" if earlier else "")
    )
    write_json(folder / presets.METADATA_FILE, metadata)
    if builtin:
        presets.register_builtin(preset)
    return old, new


def main(argv=None):
    """Runs `python -m zoo.remeasure_check_nll` with `argv`; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m zoo.remeasure_check_nll", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("presets", nargs="+", metavar="PRESET")
    args = parser.parse_args(argv)
    for preset in args.presets:
        old, new = remeasure(preset)
        print(
            f"{preset}: check_nll {old['check_nll']:.3f} ({old['check_nll_images']} images) "
            f"-> {new['check_nll']:.3f} ({new['check_nll_images']} images)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
