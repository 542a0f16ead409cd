import keras
from keras import ops

from keras_vae.models.vae import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class BetaVAE(VAE):
    """β-VAE (Higgins et al. 2017), with optional capacity annealing.

    A `VAE` whose objective weights the KL term, which trades reconstruction
    for a more factorized (disentangled) posterior:

    - β-VAE: `reconstruction_loss + beta * KL(q(z|x) || p(z))`; `beta > 1`
      pushes towards disentanglement, `beta = 1` is the plain VAE.
    - Controlled capacity (Burgess et al. 2018, "Understanding
      disentangling in β-VAE"), when `capacity_max` is set:
      `reconstruction_loss + gamma * |KL - C|`, where the target KL `C`
      grows linearly from 0 to `capacity_max` nats over the first
      `capacity_steps` optimizer steps and then stays there. `beta` is not
      used in this mode. The paper's dSprites setting is `gamma=1000`,
      `capacity_max=25`, `capacity_steps=100_000`.

    `C` is computed from the model's own step counter (`steps_trained`)
    inside the train step, so the schedule holds under `jit_compile` on
    every backend. The logged `kl_loss` is always the true KL (nats per
    example) and `loss` the objective above.

    Args:
        input_shape: tuple. Shape of one example, e.g. `(64, 64, 1)`.
        beta: float. Weight of the KL term (β-VAE mode). Defaults to `4.0`.
        capacity_max: float or `None`. Final KL target `C` in nats. `None`
            (the default) selects the β-VAE objective.
        capacity_steps: int. Optimizer steps over which `C` ramps from 0
            to `capacity_max`; `0` uses `capacity_max` from the first step.
            Defaults to `100_000`.
        gamma: float. Weight of `|KL - C|` in capacity mode. Defaults to
            `1000.0`.
        **kwargs: every `VAE` argument (`latent_dim`, `likelihood`,
            `architecture`, `hidden_dims`, `encoder`, `decoder`,
            `kl_warmup_steps`, `free_bits`, `seed`, `name`...). KL warm-up
            and free bits apply to the β-VAE mode only.

    Example:

    >>> import numpy as np
    >>> model = BetaVAE(
    ...     input_shape=(64, 64, 1), latent_dim=10, capacity_max=25.0,
    ...     capacity_steps=100_000, gamma=1000.0, seed=0)
    >>> model.compile(optimizer="adam")
    >>> rng = np.random.default_rng(0)
    >>> x = (rng.random((32, 64, 64, 1)) > 0.9).astype("float32")
    >>> history = model.fit(x, epochs=1, batch_size=16, verbose=0)
    >>> sorted(history.history)
    ['kl_loss', 'loss', 'reconstruction_loss']
    """

    def __init__(
        self,
        input_shape,
        beta=4.0,
        capacity_max=None,
        capacity_steps=100_000,
        gamma=1000.0,
        **kwargs,
    ):
        self.beta = float(beta)
        self.capacity_max = None if capacity_max is None else float(capacity_max)
        self.capacity_steps = int(capacity_steps)
        self.gamma = float(gamma)
        super().__init__(input_shape, **kwargs)

    def _check_arguments(self):
        super()._check_arguments()
        if self.objective != "elbo":
            raise ValueError(
                f"BetaVAE weights the KL of the ELBO; `objective={self.objective!r}` has "
                "no separate KL term. Use `objective='elbo'`, or `VAE` for the IWAE."
            )
        if self.beta < 0:
            raise ValueError(f"`beta` must be >= 0, got {self.beta}.")
        if self.capacity_steps < 0:
            raise ValueError(f"`capacity_steps` must be >= 0, got {self.capacity_steps}.")
        if self.gamma < 0:
            raise ValueError(f"`gamma` must be >= 0, got {self.gamma}.")
        if self.capacity_max is None:
            return
        if self.capacity_max < 0:
            raise ValueError(f"`capacity_max` must be >= 0 nats, got {self.capacity_max}.")
        if self.kl_warmup_steps > 0 or self.free_bits > 0:
            raise ValueError(
                "`kl_warmup_steps` and `free_bits` do not combine with the "
                "capacity objective (`capacity_max`): the capacity ramp "
                "already controls the KL. Set them to 0, or use "
                "`capacity_max=None` for the β-VAE objective."
            )

    def capacity(self, step):
        """The KL target `C` (nats) after `step` optimizer steps.

        `step` is a scalar tensor or a number; works under jit.
        """
        if self.capacity_max is None:
            raise ValueError("`capacity` needs `capacity_max` to be set.")
        if self.capacity_steps == 0:
            return ops.convert_to_tensor(self.capacity_max, "float32")
        fraction = ops.minimum(1.0, ops.cast(step, "float32") / float(self.capacity_steps))
        return self.capacity_max * fraction

    def kl_penalty(self, kl_per_dim, step):
        """`beta * KL` (with the VAE's warm-up and free bits), or
        `gamma * |KL - C(step)|` in capacity mode."""
        if self.capacity_max is None:
            return self.beta * super().kl_penalty(kl_per_dim, step)
        kl = ops.sum(kl_per_dim)
        return self.gamma * ops.abs(kl - self.capacity(step))

    def get_config(self):
        return {
            **super().get_config(),
            "beta": self.beta,
            "capacity_max": self.capacity_max,
            "capacity_steps": self.capacity_steps,
            "gamma": self.gamma,
        }
