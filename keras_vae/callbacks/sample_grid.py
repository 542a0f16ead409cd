import os

import keras


class SampleGrid(keras.callbacks.Callback):
    """Saves a PNG grid of prior samples every `every_n_epochs` epochs.

    The same `seed` is used at every epoch, so the files show how the same
    latent draws turn into digits as training goes. Files are named
    `samples_epoch_0001.png`, ... (epochs counted from 1) and written
    atomically, so a viewer never reads a half-written image. Needs
    matplotlib (`pip install "keras-vae[plot]"`).

    Args:
        directory: str. Folder for the PNGs (created if missing).
        every_n_epochs: int. Defaults to `1`.
        num_samples: int. Images per grid. Defaults to `64`.
        seed: int. Seed of the prior draws. Defaults to `0`.

    Example:

    >>> import keras_vae as kv
    >>> grid = kv.callbacks.SampleGrid("/tmp/samples", every_n_epochs=5)
    >>> # model.fit(x, epochs=20, callbacks=[grid])
    """

    def __init__(self, directory, every_n_epochs=1, num_samples=64, seed=0):
        super().__init__()
        if int(every_n_epochs) < 1:
            raise ValueError(
                f"`every_n_epochs` must be >= 1, got {every_n_epochs}."
            )
        if int(num_samples) < 1:
            raise ValueError(f"`num_samples` must be >= 1, got {num_samples}.")
        from keras_vae import plotting

        plotting._matplotlib()  # fail at construction if matplotlib is missing
        self.directory = os.fspath(directory)
        self.every_n_epochs = int(every_n_epochs)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.paths = []

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        from keras_vae import plotting

        images = self.model.sample(self.num_samples, seed=self.seed)
        path = os.path.join(
            self.directory, f"samples_epoch_{epoch + 1:04d}.png"
        )
        plotting.image_grid(images, title=f"epoch {epoch + 1}", path=path)
        self.paths.append(path)
