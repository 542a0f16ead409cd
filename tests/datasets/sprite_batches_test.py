import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae.datasets import SpriteBatches, sprites


def test_batches_match_their_classes_and_are_reproducible():
    batches = SpriteBatches(batch_size=16, steps=3, seed=5, with_classes=True)
    assert len(batches) == 3
    images, classes = batches[1]
    assert images.shape == (16, 64, 64, 1) and images.dtype == np.float32
    np.testing.assert_array_equal(images, sprites.sprites_images(classes))
    again = SpriteBatches(batch_size=16, steps=3, seed=5, with_classes=True)
    np.testing.assert_array_equal(again[1][1], classes)  # depends on (seed, epoch, i) only
    assert not np.array_equal(batches[0][1], classes)
    batches.on_epoch_end()  # a new epoch draws new batches
    assert not np.array_equal(batches[1][1], classes)
    other_seed = SpriteBatches(batch_size=16, steps=3, seed=6, with_classes=True)
    assert not np.array_equal(other_seed[1][1], classes)
    with pytest.raises(IndexError, match="out of range"):
        batches[3]


def test_draws_stay_inside_the_given_indices():
    indices = sprites.split_indices("test")[:50]
    batches = SpriteBatches(batch_size=200, steps=1, indices=indices, with_classes=True)
    drawn = sprites.classes_to_index(batches[0][1])
    assert set(drawn) <= set(indices.tolist())
    assert len(set(drawn)) > 25  # drawn at random, with replacement


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "`batch_size` must be a positive int"),
        ({"steps": 2.5}, "`steps` must be a positive int"),
        ({"indices": np.zeros((2, 2), "int64")}, "1-D int array"),
        ({"indices": np.array([0.5, 1.0])}, "1-D int array"),
        ({"indices": np.array([sprites.NUM_IMAGES])}, "Image indices must be in"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpriteBatches(**kwargs)


def test_fit_trains_on_sprite_batches():
    model = kv.BetaVAE(
        input_shape=(64, 64, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(SpriteBatches(batch_size=8, steps=3, workers=2), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))
    assert int(keras.ops.convert_to_numpy(model.steps_trained)) == 6
