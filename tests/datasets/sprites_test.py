import numpy as np
import pytest

from keras_vae import datasets
from keras_vae.datasets import DatasetNotFoundError, sprites


def classes_grid(**fixed):
    """Every value of the factors not in `fixed`, e.g. all x for one sprite."""
    axes = [
        [fixed[name]] if name in fixed else range(size)
        for name, size in zip(sprites.FACTOR_NAMES, sprites.NUM_VALUES)
    ]
    return np.array(np.meshgrid(*axes, indexing="ij")).reshape(5, -1).T


def test_factor_bookkeeping():
    assert sprites.NUM_IMAGES == 737_280 == 3 * 6 * 40 * 32 * 32
    indices = np.array([0, 1, 32, 1024, 40960, 245_760, 737_279])
    classes = sprites.index_to_classes(indices)
    np.testing.assert_array_equal(classes[1], [0, 0, 0, 0, 1])  # y fastest
    np.testing.assert_array_equal(classes[-1], [2, 5, 39, 31, 31])
    np.testing.assert_array_equal(sprites.classes_to_index(classes), indices)
    values = sprites.factor_values(classes)
    np.testing.assert_allclose(values[-1], [2, 1.0, 2 * np.pi * 39 / 40, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(values[0], [0, 0.5, 0, 0, 0])


def test_images_are_binary_deterministic_and_distinct():
    classes = sprites.index_to_classes(
        np.random.default_rng(0).integers(0, sprites.NUM_IMAGES, 500)
    )
    images = sprites.sprites_images(classes)
    assert images.shape == (500, 64, 64, 1) and images.dtype == np.float32
    assert set(np.unique(images)) == {0.0, 1.0}
    assert images.sum(axis=(1, 2, 3)).min() >= 40  # no empty image
    np.testing.assert_array_equal(images, sprites.sprites_images(classes))
    uint8 = sprites.sprites_images(classes[:10], dtype="uint8")
    assert uint8.dtype == np.uint8
    np.testing.assert_array_equal(uint8, images[:10])
    shapes = sprites.sprites_images([[s, 3, 5, 10, 10] for s in range(3)])
    assert len({im.tobytes() for im in shapes}) == 3


def test_position_translates_by_one_pixel():
    row = sprites.sprites_images(classes_grid(shape=2, scale=4, orientation=7, y=3))
    np.testing.assert_array_equal(row[1:], np.roll(row[:-1], 1, axis=2))
    column = sprites.sprites_images(classes_grid(shape=1, scale=2, orientation=3, x=20))
    np.testing.assert_array_equal(column[1:], np.roll(column[:-1], 1, axis=1))


def test_scale_grows_and_orientation_rotates():
    for shape in range(3):
        areas = sprites.sprites_images(classes_grid(shape=shape, orientation=0, x=16, y=16)).sum(
            axis=(1, 2, 3)
        )
        assert np.all(np.diff(areas) > 0)
    # A quarter turn (10 of 40 steps) about the image-centred sprite.
    base, quarter = sprites.sprites_images([[1, 5, 0, 16, 16], [1, 5, 10, 16, 16]])
    centred = base[16:48, 16:48, 0]
    assert np.sum(np.rot90(centred) != quarter[16:48, 16:48, 0]) <= 4
    # The square is symmetric under a quarter turn; the heart is not.
    square = sprites.sprites_images([[0, 5, 0, 16, 16], [0, 5, 10, 16, 16]])
    assert np.sum(square[0] != square[1]) <= 4
    heart = sprites.sprites_images([[2, 5, 0, 16, 16], [2, 5, 20, 16, 16]])
    assert np.sum(heart[0] != heart[1]) > 40


def test_load_splits_are_deterministic_disjoint_subsets():
    (x, c), (xt, ct) = datasets.load("sprites", num_examples=2000)
    assert x.shape == (2000, 64, 64, 1) and x.dtype == np.float32
    assert xt.shape == (10_000, 64, 64, 1) and ct.shape == (10_000, 5)
    train, test = sprites.classes_to_index(c), sprites.classes_to_index(ct)
    assert not set(train) & set(test)
    np.testing.assert_array_equal(x[:50], sprites.sprites_images(c[:50]))
    ((x2, c2),) = datasets.load("sprites", splits=("train",), num_examples=2000)
    np.testing.assert_array_equal(c2, c)
    # A larger train set extends the smaller one.
    bigger = sprites.split_indices("train", 5000)
    assert set(train) <= set(bigger)
    assert len(sprites.split_indices("train")) == sprites.DEFAULT_NUM_TRAIN
    # All factor values occur in a default-size training set.
    full = sprites.index_to_classes(sprites.split_indices("train"))
    assert [len(np.unique(col)) for col in full.T] == list(sprites.NUM_VALUES)


def test_batches_generator_and_tf_dataset():
    batches = list(sprites.sprites_batches(batch_size=1000, indices=np.arange(2500)))
    assert [len(b[0]) for b in batches] == [1000, 1000, 500]
    np.testing.assert_array_equal(batches[2][1], sprites.index_to_classes(np.arange(2000, 2500)))
    shuffled = [c for _, c in sprites.sprites_batches(100, np.arange(300), shuffle=True, seed=3)]
    again = [c for _, c in sprites.sprites_batches(100, np.arange(300), shuffle=True, seed=3)]
    np.testing.assert_array_equal(np.concatenate(shuffled), np.concatenate(again))
    assert sorted(sprites.classes_to_index(np.concatenate(shuffled))) == list(range(300))
    dataset = sprites.sprites_tf_dataset(batch_size=32, indices=np.arange(64), with_classes=True)
    images, classes = next(iter(dataset))
    assert tuple(images.shape) == (32, 64, 64, 1) and tuple(classes.shape) == (
        32,
        5,
    )
    np.testing.assert_array_equal(images.numpy(), sprites.sprites_images(classes.numpy()))
    plain = sprites.sprites_tf_dataset(batch_size=16, indices=np.arange(40), shuffle=False)
    assert [int(b.shape[0]) for b in plain] == [16, 16, 8]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: sprites.sprites_images([[3, 0, 0, 0, 0]]),
            "'shape' takes classes 0..2",
        ),
        (
            lambda: sprites.sprites_images([[0, 0, 0, 0, 32]]),
            "'y' takes classes 0..31",
        ),
        (lambda: sprites.sprites_images([[0, 0, 0, 0]]), "shape \\(n, 5\\)"),
        (lambda: sprites.sprites_images([[0.5, 0, 0, 0, 0]]), "integers"),
        (lambda: sprites.index_to_classes([737_280]), "indices"),
        (lambda: datasets.load("sprites", splits=("valid",)), "splits"),
        (
            lambda: datasets.load("sprites", splits=("test",), num_test=20_000),
            "num_test",
        ),
        (
            lambda: datasets.load("sprites", splits=("train",), num_examples=0),
            "num_examples",
        ),
        (lambda: next(sprites.sprites_batches(batch_size=0)), "batch_size"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_dsprites_missing_or_bad_file(tmp_path, monkeypatch):
    monkeypatch.setattr(sprites, "_dsprites", {})
    monkeypatch.setattr(sprites, "find_file", lambda path: None)
    with pytest.raises(DatasetNotFoundError, match="dsprites_ndarray.*load\\('sprites'\\)"):
        datasets.load("dsprites", splits=("train",))
    bad = tmp_path / sprites.DSPRITES_FILE
    np.savez(
        bad,
        imgs=np.zeros((4, 64, 64), "uint8"),
        latents_classes=np.zeros((4, 6), "int64"),
    )
    monkeypatch.setattr(
        sprites,
        "find_file",
        lambda path: bad if path == sprites.DSPRITES_FILE else None,
    )
    with pytest.raises(ValueError, match="corrupt"):
        sprites.dsprites_images([[0, 0, 0, 0, 0]])
    np.savez(bad, images=np.zeros((4, 64, 64), "uint8"))
    with pytest.raises(ValueError, match="not the dSprites file"):
        datasets.load("dsprites", splits=("test",))


class _RenderedOnDemand:
    """Stands in for the 3 GB dSprites `imgs` array (same index order)."""

    shape = (sprites.NUM_IMAGES, 64, 64)

    def __getitem__(self, indices):
        return sprites.sprites_images_at(indices, dtype="uint8")[..., 0]


def test_dsprites_splits_and_sampler_follow_the_file_order(monkeypatch):
    all_classes = sprites.index_to_classes(np.arange(sprites.NUM_IMAGES))
    monkeypatch.setattr(
        sprites,
        "_dsprites",
        {"images": _RenderedOnDemand(), "classes": all_classes},
    )
    ((x, c),) = datasets.load("dsprites", splits=("test",), num_test=300)
    ((xs, cs),) = datasets.load("sprites", splits=("test",), num_test=300)
    np.testing.assert_array_equal(c, cs)
    np.testing.assert_array_equal(x, xs)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(sprites.dsprites_images(cs[:5]), xs[:5])
