import keras
import numpy as np
from keras import ops

MASK_TYPES = ("A", "B")


def causal_mask(kernel_size, mask_type):
    """The `(kernel_size, kernel_size)` float32 mask of a raster-order causal
    convolution: 1 above the centre row and left of the centre in its row;
    the centre itself is 1 for type `"B"`, 0 for type `"A"`."""
    mask = np.zeros((kernel_size, kernel_size), "float32")
    centre = kernel_size // 2
    mask[:centre] = 1.0
    mask[centre, : centre + (mask_type == "B")] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="keras_vae")
class MaskedConv2D(keras.layers.Conv2D):
    """A causal (PixelCNN) convolution: output pixel `(i, j)` sees only the
    pixels before it in raster order (van den Oord et al. 2016).

    The kernel is multiplied by a fixed spatial mask: 1 on the rows above
    the centre and left of the centre on its row. Type `"A"` also zeroes
    the centre (the first layer, reading the image: pixel `(i, j)`'s output
    must not see pixel `(i, j)`), type `"B"` keeps it (later layers, whose
    input at `(i, j)` already depends on earlier pixels only). A stack of
    one type-A layer and any number of type-B layers is autoregressive: the
    output at `(i, j)` depends on the pixels `(i', j') < (i, j)` only, so
    per-pixel logits define `p(x) = prod_i p(x_i | x_<i)`. Every channel of
    a pixel is masked alike (the channels of one pixel are modelled as
    independent given the earlier pixels).

    The mask is a constant built from `kernel_size` and `mask_type`, not a
    weight; the kernel entries it zeroes receive no gradient. Padding is
    always `"same"` and the stride 1.

    Args:
        filters: int. Output channels.
        kernel_size: odd int. Height and width of the kernel.
        mask_type: `"A"` (the centre is masked) or `"B"`. Defaults to `"B"`.
        **kwargs: `keras.layers.Conv2D` keyword arguments (`activation`,
            `use_bias`, initializers, `name`, `dtype`), except `padding`,
            `strides`, `dilation_rate` and `data_format`.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> layer = MaskedConv2D(1, 3, mask_type="A", kernel_initializer="ones",
    ...     use_bias=False)
    >>> layer.mask.astype(int)
    array([[1, 1, 1],
           [1, 0, 0],
           [0, 0, 0]])
    >>> x = np.zeros((1, 3, 3, 1), "float32")
    >>> x[0, 1, 1, 0] = 1.0  # one pixel on: only the pixels after it see it
    >>> keras.ops.convert_to_numpy(layer(x))[0, :, :, 0].astype(int)
    array([[0, 0, 0],
           [0, 0, 1],
           [1, 1, 1]])
    """

    def __init__(self, filters, kernel_size, mask_type="B", **kwargs):
        for fixed in ("padding", "strides", "dilation_rate", "data_format", "groups"):
            if fixed in kwargs:
                raise ValueError(
                    f"MaskedConv2D does not take `{fixed}`: it is always a stride-1, "
                    "'same'-padded, channels-last convolution."
                )
        if isinstance(kernel_size, (tuple, list)):
            if len(set(kernel_size)) != 1:
                raise ValueError(f"`kernel_size` must be square, got {kernel_size}.")
            kernel_size = kernel_size[0]
        kernel_size = int(kernel_size)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"`kernel_size` must be a positive odd int (the mask needs a centre), "
                f"got {kernel_size}."
            )
        if mask_type not in MASK_TYPES:
            raise ValueError(f"`mask_type` must be 'A' or 'B', got {mask_type!r}.")
        if mask_type == "A" and kernel_size == 1:
            raise ValueError("A 1x1 type-A kernel sees nothing: use kernel_size >= 3.")
        super().__init__(
            filters, kernel_size, padding="same", data_format="channels_last", **kwargs
        )
        self.mask_type = mask_type
        self.mask = causal_mask(kernel_size, mask_type)

    def convolution_op(self, inputs, kernel):
        # The mask zeroes every row below the centre: convolve with the
        # kernel's top `centre + 1` rows over inputs padded with `centre`
        # rows on top only. The same output as the whole masked kernel with
        # "same" padding, with a third (3x3) to two fifths (5x5) fewer
        # multiply-adds.
        centre = self.kernel_size[0] // 2
        mask = ops.convert_to_tensor(self.mask[: centre + 1, :, None, None], dtype=kernel.dtype)
        inputs = ops.pad(inputs, [[0, 0], [centre, 0], [centre, centre], [0, 0]])
        return ops.conv(
            inputs,
            kernel[: centre + 1] * mask,
            strides=1,
            padding="valid",
            data_format="channels_last",
        )

    def get_config(self):
        config = super().get_config()
        for fixed in ("padding", "strides", "dilation_rate", "data_format", "groups"):
            config.pop(fixed, None)
        config["kernel_size"] = self.kernel_size[0]
        config["mask_type"] = self.mask_type
        return config
