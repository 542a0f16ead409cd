"""The recipes of the built-in presets, one JSON file per preset.

A recipe is data: its `"family"` picks the runner's hooks
(`keras_vae.runner.FAMILIES`), the rest is what that family reads (model
class and config, data set and splits, optimizer and schedule, epochs or
steps, evaluation protocol, targets, published figures). Adding a preset
means adding a file here.
"""

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def names():
    """The presets that have a recipe, sorted."""
    return sorted(path.stem for path in FOLDER.glob("*.json"))


def load(name):
    """The recipe of preset `name`, as a dict."""
    return json.loads((FOLDER / f"{name}.json").read_text())


def as_trained(recipe):
    """`recipe` without its `"family"` key: the recipe as the shipped
    presets' metadata records it (they predate the key)."""
    return {k: v for k, v in recipe.items() if k != "family"}
