import logging
import math

import keras
import numpy as np
from keras import layers, ops

from keras_vae import losses
from keras_vae.layers.inverse_autoregressive_flow import InverseAutoregressiveFlow
from keras_vae.layers.masked_conv_2d import MaskedConv2D
from keras_vae.layers.residual_block import ResidualBlock
from keras_vae.models.generative_model import (
    GenerativeModel,
    check_count,
    check_objective,
    check_posterior,
)
from keras_vae.models.importance_scorer import ImportanceScorer
from keras_vae.training import fori_loop

# Log-variances are soft-clamped to (-LOG_VAR_LIMIT, LOG_VAR_LIMIT): standard
# deviations stay within (e^-5, e^5), so no exp over- or underflows.
LOG_VAR_LIMIT = 10.0
# A group whose batch-mean KL stays under max(free_bits, COLLAPSE_NATS) nats
# over an epoch is reported as collapsed.
COLLAPSE_NATS = 0.01
# `log_likelihood` compiles its weights from this many draws on (`compiled=None`).
COMPILED_DRAWS = 20000

logger = logging.getLogger(__name__)


def _soft_clamp(log_var):
    """`LIMIT * tanh(log_var / LIMIT)`: the identity near 0, bounded, smooth."""
    return LOG_VAR_LIMIT * ops.tanh(log_var / LOG_VAR_LIMIT)


def _upsample(x, factor):
    """Nearest-neighbour upsampling of a `(batch, h, w, c)` map by `factor`."""
    if factor == 1:
        return x
    return ops.repeat(ops.repeat(x, factor, axis=1), factor, axis=2)


def _sum_over_map(values):
    """Sums a `(batch, h, w, ...)` map over every axis but the first."""
    return ops.sum(values, axis=tuple(range(1, len(values.shape))))


@keras.saving.register_keras_serializable(package="keras_vae")
class HierarchicalVAE(GenerativeModel):
    """Top-down hierarchical VAE with spatial latent groups (ladder VAE).

    The top-down form of Sønderby et al. (2016), as in NVAE (Vahdat & Kautz,
    2020) and VDVAE (Child, 2021). A deterministic **bottom-up** path of
    residual cells reads the image at every resolution the latents use.
    The **top-down** path starts from a learned map at the coarsest
    resolution and visits `L` latent groups `z_1` (top) ... `z_L`; group `l`
    is a `(h_l, w_l, c_l)` map with

    - a prior `p(z_l | z_<l) = N(mu_p, sigma_p^2)` read from the top-down
      state `h` by a small conv net, and
    - a posterior `q(z_l | x, z_<l) = N(mu_p + d_mu, sigma_p^2 exp(d))`, a
      residual on the prior (NVAE) read from `h` and the bottom-up
      activation at that resolution, so prior and posterior share the
      top-down path.

    (Groups are numbered from the top, so the prior of `z_l` conditions on
    the groups above it, `z_<l` here, `z_>l` in the ladder papers' order.)
    The sample `z_l` is projected into `h`, then `num_cells` residual cells
    update `h`. Every group's state also feeds the output through a skip
    connection (a 1x1 conv, upsampled and summed), and a residual head at
    the input resolution gives Bernoulli logits `p(x | z)`.

    With `posterior="iaf"` each group's Gaussian draw `z0_l` then goes
    through an inverse autoregressive flow (Kingma et al. 2016,
    `InverseAutoregressiveFlow`) of `flow_steps` steps, applied at every
    position of the map, autoregressive over the group's channels and
    conditioned on a context that the posterior net reads from `h` and the
    bottom-up activation (its receptive field spans neighbouring positions).
    The group's density is `log q(z_l) = log N(z0_l) - log|det|` (the
    Jacobian is block-diagonal over positions, triangular within one).

    The ELBO is `E_q[log p(x|z)] - sum_l E_q[KL(q(z_l|x, z_<l) || p(z_l|z_<l))]`
    with each group's KL in closed form given the sampled groups above it
    (with a flow: the one-draw Monte Carlo estimate `log q(z_l|x, z_<l) -
    log p(z_l|z_<l)`); the logs report it per group (`kl_1` the top group,
    ..., `kl_L`) and in total (`kl_loss = kl_1 + ... + kl_L`).
    `objective="iwae"` trains the importance-weighted bound of Burda et al.
    (2016) with `k` samples of the joint posterior instead, with the
    estimator of `keras_vae.losses` that `log_likelihood` uses too.

    Stability: log-variances are soft-clamped to `(-10, 10)`
    (`10 * tanh(v / 10)`); the posterior starts equal to the prior (the
    last conv of its residual is zero-initialised), the prior starts at
    `N(0, I)` and adds nothing to `h` (zero-initialised too), and the last
    conv of every residual cell and every latent projection is scaled by
    `1 / sqrt(number of groups)` (VDVAE), so a deep stack starts close to
    the identity.

    Example configuration for 28x28 binarized MNIST: groups at 7x7 and
    14x14 (`strides=(4, 2)`), or 7x7, 7x7 and 14x14
    (`strides=(4, 4, 2)`, two groups at 7x7). Every stride must divide the
    image's height and width and each stride the one above it
    (`strides=(8, 2)` on 28x28 raises a `ValueError`: 28 is not divisible
    by 8).

    Args:
        input_shape: tuple. Shape of one image `(height, width, channels)`,
            pixel values in `[0, 1]`.
        latent_channels: tuple of ints. Channels of each latent group, top
            group first. Defaults to `(4, 8)`.
        strides: tuple of ints, one per group, top group first,
            non-increasing: how many times smaller than the image each
            group's latent map is (`4`: a 7x7 map on 28x28 images). Defaults
            to `(4, 2)`.
        hidden_channels: int. Channels of the bottom-up and top-down paths.
            Defaults to `32`.
        num_cells: int. Residual cells per group in the top-down path, per
            resolution in the bottom-up path and in the output head.
            Defaults to `1`.
        objective: `"elbo"` or `"iwae"`. Defaults to `"elbo"`.
        num_importance_samples: int. Samples `k` of the IWAE objective;
            must be `1` with `objective="elbo"`. Defaults to `1`.
        kl_warmup_steps: int. Linearly ramps the KL weight (IWAE: the
            weight of `log p(z) - log q(z|x)`) from 0 to 1 over this many
            optimizer steps. `0` disables it. Defaults to `0`.
        free_bits: float. Minimum KL in nats of each group in the ELBO
            objective, applied to the group's batch-mean KL (Kingma et al.
            2016): `sum_l max(KL_l, free_bits)`. The logged `kl_l` stay the
            true KLs. A group whose KL stays under the floor for an epoch
            is reported by a logged warning naming it. ELBO objective
            only. Defaults to `0.0`.
        posterior: `"gaussian"` (diagonal, per group) or `"iaf"` (each
            group's Gaussian followed by an inverse autoregressive flow
            over its channels). Defaults to `"gaussian"`.
        flow_steps: int. Steps of each group's flow: `>= 1` with
            `posterior="iaf"`, `0` with `"gaussian"`. Defaults to `None`:
            `2` for `"iaf"`, `0` otherwise.
        flow_hidden_dims: tuple of ints. Hidden units of each step's MADE
            network (per position); the context has `flow_hidden_dims[0]`
            channels. Ignored without a flow. Defaults to `(64, 64)`.
        num_autoregressive_layers: int. Causal convolutions of a PixelCNN
            output head (`MaskedConv2D`: a 5x5 type-A one reading the
            image, then 3x3 type-B residual ones, `hidden_channels` wide),
            conditioned on the top-down features: `p(x | z) = prod_i
            p(x_i | x_<i, z)` in raster order (PixelVAE, Gulrajani et al.
            2017; VLAE, Chen et al. 2017). Its small receptive field models
            the local pixel correlations and leaves the global content to
            the latents. Scoring (`elbo`, `log_likelihood`, training) is
            one pass; `decode`, `reconstruct` and `sample` draw the pixels
            one at a time (`height * width` passes of the head, each over
            the few rows its pixel can see). `0`: the
            pixels are independent given the latents. Defaults to `0`.
        seed: int or `None`. Seed of the model's noise. Defaults to `None`.
        **kwargs: Base model keyword arguments (`name`, `dtype`).

    With `num_autoregressive_layers > 0` the images of `decode`,
    `reconstruct` and the export's `decode` / `reconstruct` are drawn
    greedily (each pixel on when its probability given the pixels before it
    exceeds 1/2) and `sample` draws each pixel from its conditional; all
    return each pixel's conditional probability along the image drawn.

    Example:

    >>> import numpy as np
    >>> model = HierarchicalVAE(
    ...     input_shape=(28, 28, 1), latent_channels=(2, 2), strides=(4, 2),
    ...     hidden_channels=8, seed=0)
    >>> model.compile(optimizer="adam")
    >>> x = (np.random.default_rng(0).random((16, 28, 28, 1)) > 0.5).astype("float32")
    >>> history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    >>> sorted(history.history)
    ['kl_1', 'kl_2', 'kl_loss', 'loss', 'reconstruction_loss']
    >>> z_means, z_log_vars = model.encode(x[:2])
    >>> [z.shape for z in z_means]
    [(2, 7, 7, 2), (2, 14, 14, 2)]
    >>> model.decode(z_means).shape
    (2, 28, 28, 1)
    >>> model.sample(2, temperature=0.7, seed=0).shape
    (2, 28, 28, 1)
    >>> model.log_likelihood(x[:2], num_samples=4).shape
    (2,)

    The same with an IAF posterior in every group:

    >>> iaf = HierarchicalVAE(
    ...     input_shape=(28, 28, 1), latent_channels=(2, 2), strides=(4, 2),
    ...     hidden_channels=8, posterior="iaf", flow_steps=2,
    ...     flow_hidden_dims=(16,), seed=0)
    >>> iaf.elbo(x[:2]).shape
    (2,)

    With a PixelCNN head of two causal convolutions:

    >>> pixel = HierarchicalVAE(
    ...     input_shape=(28, 28, 1), latent_channels=(2, 2), strides=(4, 2),
    ...     hidden_channels=8, num_autoregressive_layers=2, seed=0)
    >>> pixel.log_likelihood(x[:2], num_samples=4).shape
    (2,)
    >>> pixel.sample(2, seed=0).shape
    (2, 28, 28, 1)
    """

    def __init__(
        self,
        input_shape,
        latent_channels=(4, 8),
        strides=(4, 2),
        hidden_channels=32,
        num_cells=1,
        objective="elbo",
        num_importance_samples=1,
        kl_warmup_steps=0,
        free_bits=0.0,
        posterior="gaussian",
        flow_steps=None,
        flow_hidden_dims=(64, 64),
        num_autoregressive_layers=0,
        seed=None,
        **kwargs,
    ):
        # Set before the base class reads `loss_term_names`.
        self.latent_channels = tuple(int(c) for c in latent_channels)
        super().__init__(**kwargs)
        self.input_shape_ = tuple(int(d) for d in input_shape)
        self.strides = tuple(int(s) for s in strides)
        self.hidden_channels = int(hidden_channels)
        self.num_cells = int(num_cells)
        self.objective = objective
        self.num_importance_samples = int(num_importance_samples)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.free_bits = float(free_bits)
        self.posterior = posterior
        self.flow_steps, self.flow_hidden_dims = check_posterior(
            posterior, flow_steps, flow_hidden_dims
        )
        self.num_autoregressive_layers = int(num_autoregressive_layers)
        self.seed = seed
        self._check_arguments()
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_networks()
        self.built = True

    @property
    def loss_term_names(self):
        groups = tuple(f"kl_{i + 1}" for i in range(len(self.latent_channels)))
        return ("loss", "reconstruction_loss", "kl_loss") + groups

    @property
    def num_groups(self):
        return len(self.latent_channels)

    def latent_shapes(self):
        """The `(height, width, channels)` of each latent group, top first."""
        height, width = self.input_shape_[:2]
        return [(height // s, width // s, c) for s, c in zip(self.strides, self.latent_channels)]

    @property
    def context_channels(self):
        """Channels of each group's flow context (`0` without a flow)."""
        return self.flow_hidden_dims[0] if self.posterior == "iaf" else 0

    @property
    def latent_dim(self):
        """Total number of latent coordinates over every group."""
        return int(sum(math.prod(shape) for shape in self.latent_shapes()))

    def _check_arguments(self):
        if len(self.input_shape_) != 3 or min(self.input_shape_) <= 0:
            raise ValueError(
                f"`input_shape` must be (height, width, channels), got {self.input_shape_}."
            )
        if not self.latent_channels or min(self.latent_channels) < 1:
            raise ValueError(
                "`latent_channels` must be a non-empty tuple of positive ints, got "
                f"{self.latent_channels}."
            )
        if len(self.strides) != len(self.latent_channels):
            raise ValueError(
                f"`strides` needs one entry per latent group ({len(self.latent_channels)}), "
                f"got {self.strides}."
            )
        height, width = self.input_shape_[:2]
        for group, stride in enumerate(self.strides, start=1):
            if stride < 1:
                raise ValueError(f"`strides` must be positive ints, got {self.strides}.")
            if height % stride or width % stride:
                raise ValueError(
                    f"Group {group}'s stride {stride} does not divide the image size "
                    f"{height}x{width}: every stride must divide the height and width "
                    "(e.g. strides (4, 2) for 28x28 images)."
                )
        for group in range(1, len(self.strides)):
            above, below = self.strides[group - 1], self.strides[group]
            if above < below or above % below:
                raise ValueError(
                    f"`strides` must be non-increasing from the top group, each dividing "
                    f"the one above it; group {group + 1}'s stride {below} does not divide "
                    f"group {group}'s {above} (strides {self.strides})."
                )
        if self.num_autoregressive_layers < 0:
            raise ValueError(
                "`num_autoregressive_layers` must be >= 0 (0: pixels independent given "
                f"the latents), got {self.num_autoregressive_layers}."
            )
        if self.hidden_channels < 1 or self.num_cells < 0:
            raise ValueError(
                "`hidden_channels` must be >= 1 and `num_cells` >= 0, got "
                f"{self.hidden_channels} and {self.num_cells}."
            )
        check_objective(self.objective, self.num_importance_samples)
        if self.kl_warmup_steps < 0 or self.free_bits < 0:
            raise ValueError("`kl_warmup_steps` and `free_bits` must be >= 0.")
        if self.objective == "iwae" and self.free_bits > 0:
            raise ValueError(
                "`free_bits` applies to the ELBO objective only (the IWAE bound has no "
                "per-group KL term); pass free_bits=0 with objective='iwae'."
            )

    # ------------------------------------------------------------------
    # Networks.

    def _build_networks(self):
        hidden = self.hidden_channels
        height, width, channels = self.input_shape_
        # Resolutions the bottom-up path visits, finest first.
        self.scales = tuple(sorted(set(self.strides) | {1}))
        residual_scale = 1.0 / math.sqrt(self.num_groups)

        def conv(filters, size, name, zero=False, **kw):
            init = "zeros" if zero else "glorot_uniform"
            return layers.Conv2D(
                filters, size, padding="same", kernel_initializer=init, name=name, **kw
            )

        def cell(name, shape):
            block = ResidualBlock(hidden_dim=hidden, name=name)
            block.build((None,) + shape)
            block.conv_out.kernel.assign(block.conv_out.kernel * residual_scale)
            return block

        def map_shape(stride, depth=hidden):
            return (height // stride, width // stride, depth)

        self.stem = conv(hidden, 3, "stem")
        self.stem.build((None,) + self.input_shape_)
        self.bottom_up_cells = [
            cell(f"bottom_up_{scale}_{i}", map_shape(scale))
            for scale in self.scales
            for i in range(self.num_cells)
        ]
        self.top_state = self.add_weight(
            shape=map_shape(self.strides[0]), initializer="zeros", name="top_state"
        )
        self.priors, self.posteriors, self.projections, self.flows = [], [], [], []
        self.top_down_cells, self.skips = [], []
        for group, (stride, depth) in enumerate(zip(self.strides, self.latent_channels), 1):
            state = map_shape(stride)
            self.priors.append(
                keras.Sequential(
                    [
                        keras.Input(state),
                        conv(hidden, 3, "hidden", activation="silu"),
                        conv(2 * depth + hidden, 1, "params", zero=True),
                    ],
                    name=f"prior_{group}",
                )
            )
            self.posteriors.append(
                keras.Sequential(
                    [
                        keras.Input(map_shape(stride, 2 * hidden)),
                        conv(hidden, 3, "hidden", activation="silu"),
                        conv(2 * depth + self.context_channels, 1, "params", zero=True),
                    ],
                    name=f"posterior_{group}",
                )
            )
            if self.posterior == "iaf":
                # float32 whatever the policy: log q(z|x) is full precision.
                flow = InverseAutoregressiveFlow(
                    self.flow_steps, self.flow_hidden_dims, dtype="float32", name=f"flow_{group}"
                )
                flow.build((None, depth), (None, self.context_channels))
                self.flows.append(flow)
            projection = conv(hidden, 1, f"projection_{group}")
            projection.build((None,) + map_shape(stride, depth))
            projection.kernel.assign(projection.kernel * residual_scale)
            self.projections.append(projection)
            self.top_down_cells.extend(
                cell(f"top_down_{group}_{i}", state) for i in range(self.num_cells)
            )
            skip = conv(hidden, 1, f"skip_{group}")
            skip.build((None,) + state)
            self.skips.append(skip)
        self.output_cells = [cell(f"output_{i}", map_shape(1)) for i in range(self.num_cells)]
        # Logits stay float32 under a mixed-precision policy.
        self.output_conv = conv(channels, 3, "output", dtype="float32")
        self.output_conv.build((None,) + map_shape(1))
        self.autoregressive_layers = []
        if self.num_autoregressive_layers:
            # A PixelCNN head: a 5x5 type-A causal conv reads the image,
            # type-B 3x3 residual convs follow, each pixel's logit adds a
            # zero-initialised 1x1 readout (it starts as the factorised head).
            first = MaskedConv2D(hidden, 5, mask_type="A", name="autoregressive_input")
            first.build((None,) + self.input_shape_)
            self.autoregressive_layers.append(first)
            for i in range(1, self.num_autoregressive_layers):
                block = MaskedConv2D(hidden, 3, mask_type="B", name=f"autoregressive_{i}")
                block.build((None,) + map_shape(1))
                self.autoregressive_layers.append(block)
            self.autoregressive_output = conv(
                channels, 1, "autoregressive_output", zero=True, dtype="float32"
            )
            self.autoregressive_output.build((None,) + map_shape(1))

    def _flow(self, group, z0, context):
        """Group `group`'s flow at every position of its map: `(z, log_det)`,
        `z` in the compute dtype and `log_det` float32, both `z0`'s shape."""
        depth = self.latent_channels[group]
        flat_z = ops.reshape(ops.cast(z0, "float32"), (-1, depth))
        flat_context = ops.reshape(ops.cast(context, "float32"), (-1, self.context_channels))
        z, log_det = self.flows[group](flat_z, flat_context)
        shape = ops.shape(z0)
        return ops.cast(ops.reshape(z, shape), self.compute_dtype), ops.reshape(log_det, shape)

    def _bottom_up(self, x, training=False):
        """Bottom-up activations, a dict from stride to `(batch, h, w, hidden)`."""
        h = self.stem(x)
        activations, current = {}, 1
        for index, scale in enumerate(self.scales):
            if scale > current:
                factor = scale // current
                h = ops.average_pool(h, factor, strides=factor, padding="valid")
                current = scale
            for cell in self.bottom_up_cells[index * self.num_cells : (index + 1) * self.num_cells]:
                h = cell(h, training=training)
            activations[scale] = h
        return activations

    def _top_down(
        self,
        batch,
        activations=None,
        latents=(),
        noise=None,
        temperature=1.0,
        mean_latents=False,
        seed=None,
        training=False,
        pixels=None,
        pixel_noise=None,
    ):
        """Runs the top-down path from the top group down, then the output
        head: `(logits, groups)`.

        Group `l`'s latent is `latents[l]` when given; otherwise it is drawn
        from the posterior when `activations` (the bottom-up path's) are
        given, else from the prior with its standard deviation times
        `temperature`. The draw uses `noise[l]` (standard normal) when
        `noise` is given, else the generator `seed`; `mean_latents=True`
        takes the mean instead.

        The Bernoulli logits are the factorised head's; with an
        autoregressive head, those of `p(x_i | x_<i, z)` given `pixels`
        (teacher forcing: the image scored) or, without `pixels`, of the
        pixels generated one at a time (`_generate`: from `pixel_noise`,
        standard normal noise of the image's shape, or greedily).

        `groups` holds one dict per group with `z`, `p_mean`, `p_log_var`
        and, from the posterior, `q_mean`, `q_log_var` (of the Gaussian
        before the flow, if any) and with a flow `z0` (the Gaussian draw, or
        its mean) and `log_det` (the flow's float32 log-Jacobian per
        coordinate, `z`'s shape).
        """
        h, groups = self._top_down_features(
            batch,
            activations,
            latents=latents,
            noise=noise,
            temperature=temperature,
            mean_latents=mean_latents,
            seed=seed,
            training=training,
        )
        logits = self.output_conv(h)
        if self.autoregressive_layers:
            if pixels is None:
                logits = self._generate(h, logits, pixel_noise)
            else:
                logits = logits + self._autoregressive_logits(h, pixels)
        return logits, groups

    def _top_down_features(
        self,
        batch,
        activations=None,
        latents=(),
        noise=None,
        temperature=1.0,
        mean_latents=False,
        seed=None,
        training=False,
    ):
        """The top-down path of `_top_down` without the output head (same
        arguments): `(h, groups)`, `h` the head's input features at the
        image's resolution. Enough where only the latents are needed."""
        h = ops.broadcast_to(
            ops.cast(self.top_state, self.compute_dtype)[None],
            (batch,) + tuple(self.top_state.shape),
        )
        stride = self.strides[0]
        skip_sum = 0.0
        groups = []
        for group, depth in enumerate(self.latent_channels):
            if self.strides[group] < stride:
                h = _upsample(h, stride // self.strides[group])
                stride = self.strides[group]
            params = self.priors[group](h, training=training)
            # `split`, not slices: TensorFlow's gradient of a slice
            # (`StridedSliceGrad`) is slow on the CPU; a split's is a concat.
            p_mean, p_raw, feature = ops.split(params, [depth, 2 * depth], axis=-1)
            p_log_var = _soft_clamp(p_raw)
            entry = {"p_mean": p_mean, "p_log_var": p_log_var}
            eps = None if noise is None else noise[group]
            if group < len(latents):
                z = ops.cast(latents[group], self.compute_dtype)
            elif activations is not None:
                delta = self.posteriors[group](
                    ops.concatenate([h, activations[stride]], axis=-1), training=training
                )
                if self.flows:
                    delta_mean, delta_raw, context = ops.split(
                        delta, [depth, 2 * depth], axis=-1
                    )
                else:
                    delta_mean, delta_raw = ops.split(delta, 2, axis=-1)
                q_mean = p_mean + delta_mean
                q_log_var = _soft_clamp(p_raw + delta_raw)
                entry.update(q_mean=q_mean, q_log_var=q_log_var)
                z = (
                    q_mean
                    if mean_latents
                    else losses.reparameterize(q_mean, q_log_var, seed=seed, noise=eps)
                )
                if self.flows:
                    entry["z0"] = z
                    z, entry["log_det"] = self._flow(group, z, context)
            elif mean_latents or temperature == 0:
                z = p_mean
            else:
                log_var = p_log_var + 2.0 * math.log(temperature)
                z = losses.reparameterize(p_mean, log_var, seed=seed, noise=eps)
            entry["z"] = z
            groups.append(entry)
            h = h + feature + self.projections[group](z)
            cells = self.top_down_cells[group * self.num_cells : (group + 1) * self.num_cells]
            for cell in cells:
                h = cell(h, training=training)
            skip_sum = skip_sum + _upsample(self.skips[group](h), stride)
        h = _upsample(h, stride) + skip_sum
        for cell in self.output_cells:
            h = cell(h, training=training)
        return keras.activations.silu(h), groups

    @property
    def autoregressive_reach(self):
        """Rows above a pixel that the PixelCNN head's logit there can see:
        2 for the 5x5 type-A convolution, 1 more per 3x3 type-B one (`0`
        without a head)."""
        return self.num_autoregressive_layers + 1 if self.autoregressive_layers else 0

    def _autoregressive_logits(self, h, pixels, mask=None, cropped=False):
        """The PixelCNN head's share of the logits: at each pixel, a function
        of the pixels before it in raster order and of the top-down output
        features `h` (the latents, seen everywhere). `mask` (`(1, rows, 1,
        1)` or `(1, rows, columns, 1)`, 0 on the rows, or positions, outside
        the image) zeroes those positions of each causal convolution's
        input, as the "same" padding of a whole image does.

        `cropped=True` crops each causal convolution's output to the
        positions whose inputs all lie inside the inputs given (those nearer
        their top or their sides read the convolution's zero padding), so
        the next one runs on fewer positions: on the window of one pixel's
        receptive field (`_window_logits`) the last runs on that pixel
        alone."""

        def crop(tensor, layer):  # the kernel's reach: rows above, columns on each side
            if not cropped:
                return tensor
            reach = layer.kernel_size[0] // 2
            return tensor[:, reach:, reach : tensor.shape[2] - reach]

        first = self.autoregressive_layers[0]
        a = crop(first(ops.cast(pixels, self.compute_dtype)), first) + crop(h, first)
        if mask is not None:
            mask = crop(mask, first)
        for layer in self.autoregressive_layers[1:]:
            inputs = keras.activations.silu(a)
            if mask is not None:
                inputs = inputs * ops.cast(mask, inputs.dtype)
                mask = crop(mask, layer)
            a = crop(a, layer) + crop(layer(inputs), layer)
        return self.autoregressive_output(keras.activations.silu(a))

    def _band_row_logits(self, h, pixels, base_row, row_mask):
        """The logits of the last row of a band of `autoregressive_reach + 1`
        rows (`h` and `pixels` of those rows, `row_mask` 0 on rows above the
        image): `base_row`, the factorised logits of that row, plus the
        head's. The bits-back codec runs the head so."""
        return base_row + self._autoregressive_logits(h, pixels, row_mask)[:, -1]

    def _window_logits(self, h, pixels, mask):
        """The head's logits, `(batch, channels)`, at one pixel from the
        window of its receptive field: `h`, `pixels` and `mask` (1 inside
        the image) of the `autoregressive_reach + 1` rows that end at the
        pixel's row and the `2 * autoregressive_reach + 1` columns centred
        on it, each convolution cropped (`_autoregressive_logits`)."""
        return self._autoregressive_logits(h, pixels, mask, cropped=True)[:, 0, 0]

    def _generate(self, h, base_logits, pixel_noise=None):
        """Draws an image pixel by pixel in raster order from the
        autoregressive head: one `keras_vae.training.fori_loop` (a
        `keras.ops.fori_loop`, one graph on TensorFlow) over the
        `height * width` positions (the channels of a pixel are drawn
        together). Pixel `i` is 1 when `pixel_noise[i] < Phi^-1(p_i)` (`Phi`
        the standard normal CDF: the noise is standard normal), or, without
        noise, when `p_i > 1/2` (greedy). Returns the logits of each pixel
        given the pixels drawn before it (float32, the image's shape).

        Each step runs the head on the window of the pixel's receptive
        field only (`_window_logits`; the image padded with zeros, and each
        causal convolution's input zeroed outside the image as the "same"
        padding of a whole image does), not on the whole image."""
        height, width, channels = self.input_shape_
        reach = self.autoregressive_reach
        rows, columns = reach + 1, 2 * reach + 1
        padding = [[0, 0], [reach, 0], [reach, reach], [0, 0]]
        padded_width = width + 2 * reach
        inside = np.pad(np.ones((height, width), "float32"), padding[1:3])
        inside = ops.convert_to_tensor(inside[None, :, :, None])
        h = ops.pad(h, padding)
        batch, hidden = ops.shape(h)[0], ops.shape(h)[-1]
        if pixel_noise is not None:
            # Phi(noise) < p  <=>  noise < Phi^-1(p): compare uniforms to p.
            uniforms = 0.5 * (1.0 + ops.erf(ops.cast(pixel_noise, "float32") / math.sqrt(2.0)))
            uniforms = ops.reshape(uniforms, (-1, height * width, channels))

        def step(i, state):
            pixels, logits = state
            row, column = i // width, i % width
            window = (0, row, column, 0)  # padded rows row..row+reach, columns column..+2*reach
            current = self._window_logits(
                ops.slice(h, window, (batch, rows, columns, hidden)),
                ops.slice(pixels, window, (batch, rows, columns, channels)),
                ops.slice(inside, window, (1, rows, columns, 1)),
            ) + ops.take(ops.take(base_logits, row, axis=1), column, axis=1)
            if pixel_noise is None:
                drawn = ops.cast(current > 0, "float32")
            else:
                drawn = ops.cast(ops.take(uniforms, i, axis=1) < ops.sigmoid(current), "float32")
            here = ops.one_hot(i, height * width, dtype="float32")
            padded_here = ops.one_hot(
                (row + reach) * padded_width + column + reach,
                (height + reach) * padded_width,
                dtype="float32",
            )
            pixels = pixels + ops.reshape(padded_here, (1, height + reach, padded_width, 1)) * (
                drawn[:, None, None, :]
            )
            logits = logits + ops.reshape(here, (1, height, width, 1)) * current[:, None, None, :]
            return pixels, logits

        pixels = ops.pad(ops.zeros_like(base_logits), padding)
        _, logits = fori_loop(0, height * width, step, (pixels, ops.zeros_like(base_logits)))
        return logits

    # ------------------------------------------------------------------
    # Math (keras.ops only; used by the train step and the public verbs).

    def _posterior_pass(self, x, num_samples=1, seed=None, noise=None, training=False):
        """`num_samples` draws of the joint posterior for each example of `x`.

        Returns a dict of per-draw vectors of length `num_samples * batch`,
        sample-major (draw `s` of example `b` at `s * batch + b`):
        `log_px_z`, `log_pz` (the joint prior density of all groups),
        `log_qz` (the joint posterior density) and `kls`, one KL per group
        given the sampled groups above it: in closed form, or with a flow
        the draw's `log q(z_l | x, z_<l) - log p(z_l | z_<l)`.
        """
        activations = self._bottom_up(x, training=training)
        if not (isinstance(num_samples, int) and num_samples == 1):
            # The bottom-up path runs once per example, not once per draw.
            x = ops.tile(x, (num_samples, 1, 1, 1))
            activations = {s: ops.tile(a, (num_samples, 1, 1, 1)) for s, a in activations.items()}
        logits, groups = self._top_down(
            ops.shape(x)[0], activations, noise=noise, seed=seed, training=training, pixels=x
        )
        log_pz, log_qz, kls = 0.0, 0.0, []
        for g in groups:
            log_p = _sum_over_map(
                losses.diagonal_gaussian_log_prob(g["z"], g["p_mean"], g["p_log_var"])
            )
            if self.flows:
                log_q = _sum_over_map(
                    losses.flow_log_prob(g["z0"], g["q_mean"], g["q_log_var"], g["log_det"])
                )
                kls.append(log_q - log_p)
            else:
                log_q = _sum_over_map(
                    losses.diagonal_gaussian_log_prob(g["z"], g["q_mean"], g["q_log_var"])
                )
                kls.append(
                    _sum_over_map(
                        losses.diagonal_gaussian_kl(
                            g["q_mean"], g["q_log_var"], g["p_mean"], g["p_log_var"]
                        )
                    )
                )
            log_pz += log_p
            log_qz += log_q
        return {
            "log_px_z": losses.bernoulli_log_likelihood(x, logits),
            "log_pz": log_pz,
            "log_qz": log_qz,
            "kls": kls,
        }

    def kl_weight(self, step):
        """The KL weight of the linear warm-up at optimizer step `step`."""
        if self.kl_warmup_steps > 0:
            return ops.minimum(1.0, (step + 1.0) / self.kl_warmup_steps)
        return 1.0

    def compute_loss_terms(self, x, training=False):
        step = self.advance_step(training)
        k = self.num_importance_samples
        draws = self._posterior_pass(x, k, seed=self.seed_generator, training=training)
        reconstruction_loss = -ops.mean(draws["log_px_z"])
        kl_means = [ops.mean(kl) for kl in draws["kls"]]
        weight = self.kl_weight(step)
        if self.objective == "elbo":
            penalty = sum(
                ops.maximum(kl, self.free_bits) if self.free_bits > 0 else kl for kl in kl_means
            )
            loss = reconstruction_loss + weight * penalty
        else:
            log_weights = losses.importance_log_weights(
                draws["log_px_z"], weight * draws["log_pz"], weight * draws["log_qz"]
            )
            log_weights = ops.reshape(log_weights, (k, -1))
            loss = -ops.mean(losses.importance_sampled_log_likelihood(log_weights, axis=0))
        terms = {
            "loss": loss,
            "reconstruction_loss": reconstruction_loss,
            "kl_loss": sum(kl_means),
        }
        terms.update({f"kl_{i + 1}": kl for i, kl in enumerate(kl_means)})
        return terms

    def call(self, inputs, training=None):
        activations = self._bottom_up(inputs, training=training)
        batch = ops.shape(inputs)[0]
        logits, groups = self._top_down(
            batch, activations, seed=self.seed_generator, training=training, pixels=inputs
        )
        codes = groups
        if self.flows:  # `z_mean` is the flowed code, as `encode` gives it.
            _, codes = self._top_down_features(
                batch, activations, mean_latents=True, training=training
            )
        return {
            "reconstruction": ops.sigmoid(logits),
            "z_mean": self._flatten([g["z"] if self.flows else g["q_mean"] for g in codes]),
            "z_log_var": self._flatten([g["q_log_var"] for g in codes]),
            "z": self._flatten([g["z"] for g in groups]),
        }

    def _flatten(self, maps):
        """Concatenates per-group maps into `(batch, latent_dim)`, top first."""
        return ops.concatenate([ops.reshape(m, (ops.shape(m)[0], -1)) for m in maps], axis=-1)

    @property
    def noise_dim(self):
        """Standard normal numbers per image of `sample`: every group's
        latents, and with an autoregressive head one per pixel value."""
        pixels = math.prod(self.input_shape_) if self.autoregressive_layers else 0
        return self.latent_dim + pixels

    def _split_noise(self, flat):
        """`(batch, noise_dim)` noise to `(latent maps, pixel noise or None)`."""
        latents = self._split(flat[:, : self.latent_dim])
        if not self.autoregressive_layers:
            return latents, None
        return latents, ops.reshape(flat[:, self.latent_dim :], (-1,) + self.input_shape_)

    def _split(self, flat):
        """Inverse of `_flatten`: `(batch, latent_dim)` to per-group maps."""
        maps, start = [], 0
        for shape in self.latent_shapes():
            size = math.prod(shape)
            maps.append(ops.reshape(flat[:, start : start + size], (-1,) + shape))
            start += size
        return maps

    # ------------------------------------------------------------------
    # Fit: warns about collapsed groups.

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        if not any(isinstance(c, _GroupCollapseWarning) for c in callbacks):
            callbacks.append(_GroupCollapseWarning())
        return super().fit(x, y, *args, callbacks=callbacks, **kwargs)

    # ------------------------------------------------------------------
    # Input checks.

    def validate_inputs(self, x):
        x = np.asarray(x)
        self.check_image_batch(x, self.input_shape_)
        if x.size and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                "A Bernoulli likelihood needs inputs in [0, 1]; got values in "
                f"[{x.min()}, {x.max()}]. Scale pixels with x / 255."
            )

    def _checked_latents(self, latents):
        if not isinstance(latents, (list, tuple)):
            raise ValueError(
                "Expected a list of latent maps, one per group from the top "
                f"(shapes {self.latent_shapes()}), got {type(latents).__name__}."
            )
        if len(latents) > self.num_groups:
            raise ValueError(
                f"Expected at most {self.num_groups} latent groups, got {len(latents)}."
            )
        checked = []
        for group, (z, shape) in enumerate(zip(latents, self.latent_shapes()), start=1):
            z = np.asarray(z, dtype="float32")
            if z.ndim != 4 or tuple(z.shape[1:]) != shape:
                raise ValueError(
                    f"Expected group {group}'s latents of shape "
                    f"(batch, {', '.join(map(str, shape))}), got {z.shape}."
                )
            bad = int(np.size(z) - np.isfinite(z).sum())
            if bad:
                raise ValueError(
                    f"Group {group}'s latents contain {bad} NaN or infinite values; "
                    "decoding them would give NaN images."
                )
            checked.append(z)
        if len({len(z) for z in checked}) > 1:
            raise ValueError("Every group's latents must have the same batch size.")
        return checked

    # ------------------------------------------------------------------
    # Public verbs: NumPy in, NumPy out, batched.

    def encode(self, x, batch_size=256):
        """Posterior parameters of every group, top first (NumPy).

        Each group's `q(z_l | x, z_<l)` is computed with the groups above it
        at their posterior means. With `posterior="iaf"`, `z_means` are the
        flowed codes (each group's Gaussian mean through its flow, no noise)
        and `z_log_vars` those of the Gaussians before the flows.

        Returns:
            `(z_means, z_log_vars)`: two lists with one array of shape
            `(n, h_l, w_l, c_l)` per group.
        """
        x = self._checked(x)

        def batch_encode(xb):
            activations = self._bottom_up(xb)
            _, groups = self._top_down_features(ops.shape(xb)[0], activations, mean_latents=True)
            return tuple(g["z"] for g in groups) + tuple(g["q_log_var"] for g in groups)

        outputs = self._run_batched(batch_encode, [x], batch_size)
        return list(outputs[: self.num_groups]), list(outputs[self.num_groups :])

    def decode(self, latents, temperature=1.0, seed=None, batch_size=256):
        """Pixel probabilities of `p(x | z)` from a list of group latents.

        Args:
            latents: list of arrays, one per group from the top, of shapes
                `(n, h_l, w_l, c_l)` (see `latent_shapes()`). A list of the
                top `m < L` groups fixes those and draws the lower groups
                from the prior: what each group encodes.
            temperature: float. Scales the prior's standard deviation of the
                groups drawn. Defaults to `1.0`.
            seed: int or `None`. Seed of the groups drawn.
            batch_size: int. Defaults to `256`.
        """
        latents = self._checked_latents(latents)
        if not latents:
            raise ValueError("Pass at least the top group's latents (use `sample` for none).")
        generator = keras.random.SeedGenerator(seed)

        def batch_decode(*zb):
            logits, _ = self._top_down(
                ops.shape(zb[0])[0], latents=zb, temperature=temperature, seed=generator
            )
            return ops.sigmoid(logits)

        return self._run_batched(batch_decode, latents, batch_size)

    def reconstruct(self, x, batch_size=256):
        """Decodes each input with every group at its posterior mean:
        `decode(encode(x)[0])`."""
        x = self._checked(x)

        def batch_reconstruct(xb):
            activations = self._bottom_up(xb)
            logits, _ = self._top_down(ops.shape(xb)[0], activations, mean_latents=True)
            return ops.sigmoid(logits)

        return self._run_batched(batch_reconstruct, [x], batch_size)

    def sample(self, num_samples, temperature=1.0, seed=None, batch_size=256):
        """Images from the prior, every group drawn top-down.

        Args:
            num_samples: int. How many images.
            temperature: float >= 0. Scales every group's prior standard
                deviation (`0.7` gives cleaner, less diverse samples; `0`
                the prior means). Defaults to `1.0`.
            seed: int or `None`. NumPy draws every group's standard normal
                noise (`np.random.default_rng(seed)`), so a seed gives the
                same images on every backend (to float tolerance). Defaults
                to `None`.
            batch_size: int. Defaults to `256`.
        """
        num_samples = check_count("num_samples", num_samples)
        if not temperature >= 0:
            raise ValueError(f"`temperature` must be >= 0, got {temperature}.")
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal((num_samples, self.latent_dim)).astype("float32")
        if self.autoregressive_layers:
            pixels = rng.standard_normal((num_samples, math.prod(self.input_shape_)))
            noise = np.concatenate([noise, pixels.astype("float32")], axis=1)

        def batch_sample(noise_batch):
            latents, pixel_noise = self._split_noise(noise_batch)
            logits, _ = self._top_down(
                ops.shape(noise_batch)[0],
                noise=latents,
                temperature=float(temperature),
                pixel_noise=pixel_noise,
            )
            return ops.sigmoid(logits)

        return self._run_batched(batch_sample, [noise], batch_size)

    def elbo(self, x, num_samples=1, batch_size=256, seed=None):
        """Per-example ELBO in nats, averaged over `num_samples` posterior
        draws (closed-form KL of each group given the groups above it; a
        Monte Carlo one with a flow posterior)."""
        x = self._checked(x)
        num_samples = check_count("num_samples", num_samples)
        generator = keras.random.SeedGenerator(seed)

        def batch_elbo(xb):
            draws = self._posterior_pass(xb, num_samples, seed=generator)
            values = draws["log_px_z"] - sum(draws["kls"])
            return ops.mean(ops.reshape(values, (num_samples, -1)), axis=0)

        return self._run_batched(batch_elbo, [x], batch_size)

    def group_kls(self, x, num_samples=1, batch_size=256, seed=None):
        """Per-example KL of each group in nats, `(n, num_groups)`, top first.

        Column `l` is `KL(q(z_l | x, z_<l) || p(z_l | z_<l))` in closed form
        (with a flow posterior: its Monte Carlo estimate `log q - log p`),
        averaged over `num_samples` draws of the groups above; the rows sum
        to the KL term of `elbo`.
        """
        x = self._checked(x)
        num_samples = check_count("num_samples", num_samples)
        generator = keras.random.SeedGenerator(seed)

        def batch_kls(xb):
            draws = self._posterior_pass(xb, num_samples, seed=generator)
            kls = ops.stack(draws["kls"], axis=-1)
            return ops.mean(ops.reshape(kls, (num_samples, -1, self.num_groups)), axis=0)

        return self._run_batched(batch_kls, [x], batch_size)

    def log_likelihood(
        self, x, num_samples=1000, batch_size=None, seed=0, max_decode=None, compiled=None
    ):
        """Importance-sampled estimate of `log p(x)` in nats, per example.

        The IWAE bound of Burda et al. (2016) with the joint posterior
        `q(z_1..z_L | x)` as proposal and the joint prior: `log mean_k
        p(x|z^k) prod_l p(z_l^k|z_<l^k) / q(z_l^k|x, z_<l^k)`
        (`losses.importance_sampled_log_likelihood`). The standard-normal
        noise of the draws comes from `seed`; each batch runs the
        `ImportanceScorer` shared with `VAE`: chunks of at most
        `max_decode` draws in one loop, folded into a running float32
        log-sum-exp, eagerly or as one compiled function
        (`predict_on_batch`: jit on JAX, `tf.function` on TensorFlow), with
        the same noise and the same values to float round-off.

        Args:
            x: array of shape `(n, *input_shape)`.
            num_samples: int. Importance samples per example.
            batch_size: int. Inputs at once. Defaults to `min(n, 500,
                max_decode)`; fewer where the batch's noise would exceed
                `MAX_NOISE_FLOATS` of `keras_vae.models.importance_scorer`
                (256 MiB: 28 images at k = 1000 with the
                `hvae_binarized_mnist` recipe's 2,352 latents).
            seed: int. Seed of the importance samples. Defaults to `0`.
            max_decode: int. Largest number of images decoded in one
                step of the loop. Defaults to `None`: `4096` on TensorFlow,
                `256` on JAX and torch (the fastest of 256, 1024 and 4096
                for the `hvae_binarized_mnist` recipe's network on a CPU,
                `benchmarks/max_decode.py`; JAX 1.9x faster at 256 than at
                4096).
            compiled: bool or `None`. Compute the weights compiled; `None`
                compiles when there are at least `20000` draws (compiling
                costs seconds, then each chunk runs many times faster).

        Returns:
            NumPy array of shape `(n,)`.
        """
        x = self._checked(x)
        num_samples = check_count("num_samples", num_samples)
        if max_decode is None:
            max_decode = 4096 if keras.backend.backend() == "tensorflow" else 256
        max_decode = check_count("max_decode", max_decode)
        batch_size = check_count("batch_size", batch_size, allow_none=True)
        batch_size = batch_size or max(1, min(len(x), 500, max_decode))
        if compiled is None:
            compiled = num_samples * len(x) >= COMPILED_DRAWS
        return self._scorer().log_likelihood(
            x, num_samples, batch_size, seed, max_decode, compiled=compiled
        )

    def _scorer(self):
        """The compiled `log_likelihood` of this model (`ImportanceScorer`),
        made once. Kept out of Keras' tracking (it refers to this model)."""
        scorer = self.__dict__.get("_importance_scorer")
        if scorer is None:
            scorer = ImportanceScorer(self)
            object.__setattr__(self, "_importance_scorer", scorer)
        return scorer

    def importance_log_weight_fn(self, x, decoder=None):
        """Returns `noise -> log importance weights` for a batch `x`: noise
        of shape `(k, batch, latent_dim)` (every group's flattened, top
        first) gives the `(k, batch)` float32 log-weights of the joint
        draws. Used by `ImportanceScorer`; `decoder` must be `None` (the
        top-down pass is the decoder)."""
        if decoder is not None:
            raise ValueError("HierarchicalVAE scores with its own top-down pass; got a `decoder`.")

        def log_weights(noise):
            k, batch = ops.shape(noise)[0], ops.shape(noise)[1]
            flat = ops.reshape(noise, (-1, self.latent_dim))
            # `k` may be a symbolic size when TensorFlow traces with unknown
            # shapes.
            draws = self._posterior_pass(x, k, noise=self._split(flat))
            log_w = losses.importance_log_weights(
                draws["log_px_z"], draws["log_pz"], draws["log_qz"]
            )
            return ops.reshape(log_w, (k, batch))

        return log_weights

    def anomaly_score(self, x, num_samples=1, seed=0, batch_size=256):
        """Per-example anomaly score in nats (higher: more anomalous): the
        negative ELBO (`num_samples=1`) or the negative importance-sampled
        log-likelihood with `num_samples` samples.

        Deterministic by default (`seed=0`; `None` draws fresh noise).
        Invalid input (NaN or infinite pixels, pixels outside `[0, 1]`) is
        refused with a `ValueError`; the exported `score` signature scores
        it `+inf` instead (see `VAE.anomaly_score`)."""
        num_samples = check_count("num_samples", num_samples)
        if num_samples > 1:
            return -self.log_likelihood(x, num_samples=num_samples, seed=seed)
        return -self.elbo(x, seed=seed, batch_size=batch_size)

    # ------------------------------------------------------------------
    # Serving protocol (keras_vae.export): every group's latents flattened
    # and concatenated, top group first, into one `z` of `latent_dim`.

    def serving_spec(self, score_num_samples=1):
        return {
            "inputs": ("images", self.input_shape_, "float32"),
            "codes": ("z", (self.latent_dim,), "float32"),
            "sample_noise": ((self.noise_dim,), "normal"),
            "score_noise": ((int(score_num_samples), self.latent_dim), "normal"),
            "valid_inputs": "finite pixels in [0, 1]",
        }

    def screen_inputs_tensor(self, inputs):
        """See `GenerativeModel.screen_inputs_tensor`: pixels must be finite
        and in `[0, 1]` (the Bernoulli likelihood's range)."""
        return super().screen_inputs_tensor(inputs, value_range=(0.0, 1.0))

    def encode_tensor(self, inputs):
        activations = self._bottom_up(inputs)
        _, groups = self._top_down_features(ops.shape(inputs)[0], activations, mean_latents=True)
        return {
            "z_mean": self._flatten([g["z"] for g in groups]),
            "z_log_var": self._flatten([g["q_log_var"] for g in groups]),
        }

    def decode_tensor(self, codes):
        latents = self._split(ops.cast(codes, "float32"))
        logits, _ = self._top_down(ops.shape(codes)[0], latents=latents)
        return {"images": ops.sigmoid(logits)}

    def reconstruct_tensor(self, inputs):
        activations = self._bottom_up(inputs)
        logits, _ = self._top_down(ops.shape(inputs)[0], activations, mean_latents=True)
        return {"reconstruction": ops.sigmoid(logits)}

    def sample_from_noise(self, noise):
        latents, pixel_noise = self._split_noise(ops.cast(noise, "float32"))
        logits, _ = self._top_down(ops.shape(noise)[0], noise=latents, pixel_noise=pixel_noise)
        return {"samples": ops.sigmoid(logits)}

    def score_from_noise(self, inputs, noise):
        """Negative ELBO (`noise` of shape `(batch, 1, latent_dim)`, closed-form
        KLs) or negative IWAE bound (`(batch, k, latent_dim)`, `k > 1`)."""
        inputs = ops.cast(inputs, "float32")
        noise = ops.cast(noise, "float32")
        k = noise.shape[1]
        # (batch, k, D) -> sample-major (k * batch, D), as `_posterior_pass`.
        flat = ops.reshape(ops.transpose(noise, (1, 0, 2)), (-1, self.latent_dim))
        draws = self._posterior_pass(inputs, k, noise=self._split(flat))
        if k == 1:
            return {"score": sum(draws["kls"]) - draws["log_px_z"]}
        log_w = losses.importance_log_weights(draws["log_px_z"], draws["log_pz"], draws["log_qz"])
        log_w = ops.reshape(log_w, (k, -1))
        return {"score": -losses.importance_sampled_log_likelihood(log_w, axis=0)}

    def get_config(self):
        return {
            **super().get_config(),
            "input_shape": self.input_shape_,
            "latent_channels": self.latent_channels,
            "strides": self.strides,
            "hidden_channels": self.hidden_channels,
            "num_cells": self.num_cells,
            "objective": self.objective,
            "num_importance_samples": self.num_importance_samples,
            "kl_warmup_steps": self.kl_warmup_steps,
            "free_bits": self.free_bits,
            "posterior": self.posterior,
            "flow_steps": self.flow_steps,
            "flow_hidden_dims": self.flow_hidden_dims,
            "num_autoregressive_layers": self.num_autoregressive_layers,
            "seed": self.seed,
        }


class _GroupCollapseWarning(keras.callbacks.Callback):
    """Logs a warning naming each latent group whose KL ended training
    (the last epoch's mean) under `max(free_bits, COLLAPSE_NATS)` nats: it
    encodes (almost) nothing about the input."""

    def __init__(self):
        super().__init__()
        self.last_logs = {}

    def on_epoch_end(self, epoch, logs=None):
        self.last_logs = dict(logs or {})
        self.epochs = epoch + 1

    def on_train_end(self, logs=None):
        model = self.model
        floor = max(model.free_bits, COLLAPSE_NATS)
        for group, shape in enumerate(model.latent_shapes(), start=1):
            kl = self.last_logs.get(f"kl_{group}")
            if kl is None or not float(kl) < floor:
                continue
            logger.warning(
                "%s: latent group %d (kl_%d, a %s map) has collapsed after %d epochs: its "
                "KL is %.4f nats, under the floor of %.4f nats (free bits %g); it carries "
                "almost no information about the input.",
                model.name,
                group,
                group,
                "x".join(map(str, shape)),
                self.epochs,
                float(kl),
                floor,
                model.free_bits,
            )
