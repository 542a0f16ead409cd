import keras

from keras_vae import losses


@keras.saving.register_keras_serializable(package="keras_vae")
class Sampling(keras.layers.Layer):
    """Draws `z = mean + exp(log_var / 2) * eps` (the reparameterization trick).

    A layer around `keras_vae.losses.reparameterize` that owns the seed.

    The layer samples in training and in inference alike: a VAE's ELBO is a
    stochastic quantity, so validation sees the same estimator as training.
    It owns a `keras.random.SeedGenerator`, whose state advances on every
    call and survives jit-compiled steps on every backend.

    Args:
        seed: int or `None`. Seed of the layer's generator. Defaults to
            `None` (a random seed).
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: list `[mean, log_var]`, two tensors of the same shape
            `(batch, latent_dim)`.

    Returns:
        A tensor of the inputs' shape.

    Example:

    >>> import numpy as np
    >>> z = Sampling(seed=0)([np.zeros((2, 3)), np.zeros((2, 3))])
    >>> tuple(z.shape)
    (2, 3)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        mean, log_var = inputs
        return losses.reparameterize(mean, log_var, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
