"""Writes the pictures of a `HierarchicalVAE` preset into its folder.

Usage:

    python -m zoo.hvae_pictures                        # hvae_binarized_mnist
    python -m zoo.hvae_pictures PRESET [--output-dir DIR]

The runner writes the same pictures when it makes a `HierarchicalVAE`
preset (`keras_vae.runner.families.image_vae.hierarchy_pictures`); this
command (re)makes them for a preset folder that exists already, e.g. one
whose training started before the hook existed:

- `samples_t1.0.png`, `samples_t0.7.png`: 64 samples at temperatures 1.0
  and 0.7 (seed 0; `model.sample` draws its noise with NumPy, so every
  backend gives the same images);
- `group_resampling.png`: what each latent group encodes. Four test images
  drawn at random (`np.random.default_rng(0).choice`, never a prefix: the
  binarized MNIST test file is sorted by digit); per image and per number
  `m` of fixed groups, a row of the image, its reconstruction and 8
  decodes with the top `m` groups at its posterior means and the lower
  ones drawn from the prior.

The pictures sit beside the preset's hashed files (the registry does not
hash them), written atomically. The test images come from the data set and
test split of the recipe recorded in the preset's metadata.
"""

import argparse
import sys
from pathlib import Path

from keras_vae import datasets, presets
from keras_vae.models.hierarchical_vae import HierarchicalVAE
from keras_vae.runner.families.image_vae import hierarchy_pictures

DEFAULT_PRESET = "hvae_binarized_mnist"


def main(argv=None):
    """Runs `python -m zoo.hvae_pictures` with `argv`; returns the exit
    status (1, with a message, when the preset is not trained yet)."""
    parser = argparse.ArgumentParser(
        prog="python -m zoo.hvae_pictures", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "preset",
        nargs="?",
        default=DEFAULT_PRESET,
        help=f"a built-in preset name or a preset folder (default: {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--output-dir", metavar="DIR", help="where to write the PNGs (default: the preset's folder)"
    )
    args = parser.parse_args(argv)
    if args.preset not in presets.registry() and not Path(args.preset).is_dir():
        print(
            f"{args.preset} is not trained yet: no built-in preset or folder of that name "
            f"(train it with `python -m zoo.train {Path(args.preset).name}`).",
            file=sys.stderr,
        )
        return 1
    model = presets.from_preset(args.preset)
    if not isinstance(model, HierarchicalVAE):
        parser.error(f"{args.preset} is a {type(model).__name__}, not a HierarchicalVAE.")
    recipe = model.preset_metadata.get("recipe", {})
    dataset = recipe.get("dataset", "binarized_mnist")
    split = recipe.get("splits", {}).get("test", "test")
    (x_test, _), = datasets.load(dataset, splits=(split,))
    output = Path(args.output_dir or presets.resolve_preset(args.preset))
    output.mkdir(parents=True, exist_ok=True)
    for path in hierarchy_pictures(model, x_test, output):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
