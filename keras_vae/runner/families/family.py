"""`Family`: the hooks a model family gives the runner."""


class Family:
    """What the runner asks a model family: its options, data, model,
    training stages, evaluation and metadata.

    One subclass per family (`ImageVAE`, `VQVAEFamily`, `Sprites`, `Text`),
    chosen by the recipe's `"family"` key (`FAMILIES`). `options` is an
    `argparse.Namespace` holding the family's options (`add_arguments`)
    and the runner's own (`evaluate_only`).

    Example:

    >>> from keras_vae.runner.families import FAMILIES
    >>> sorted(FAMILIES)
    ['image_vae', 'sprites', 'text', 'vq_vae']
    """

    def add_arguments(self, parser):
        """Adds the family's command-line options to `parser`."""

    def changed_options(self, options):
        """Option name -> whether it was given, for the options that change
        what the recipe trains or measures (such a run must name its own
        output folder rather than replace a shipped preset)."""
        return {}

    def apply_options(self, recipe, options, error):
        """The recipe as `options` change it (`error(message)` refuses)."""
        return recipe

    def run_key(self, recipe, options):
        """What, beside the recipe, makes a run differ (the run folder's
        name hashes it): JSON-able."""
        return []

    def load_data(self, recipe, options):
        """The data of a run: a dict the other hooks read."""
        raise NotImplementedError

    def build_model(self, recipe, data):
        """The untrained, uncompiled model of the recipe."""
        raise NotImplementedError

    def stages(self, model, recipe, data, options):
        """The `Stage`s that train `model`, in order."""
        raise NotImplementedError

    def evaluate(self, model, run_dir, recipe, data, options):
        """The preset's metrics (a dict), measured with the project's code."""
        raise NotImplementedError

    def metadata(self, model, recipe, data, options, training, metrics):
        """The family's own entries of the preset's metadata (a dict);
        `training` maps each stage's name to its record."""
        return {}

    def pictures(self, model, run_dir, data, options):
        """Files written into `run_dir` to copy beside the preset."""
        return []
