"""The disentanglement metrics on a real model and the sprites data."""

import numpy as np

from keras_vae.datasets import sprites
from keras_vae.metrics import (
    dci_disentanglement,
    factor_vae_score,
    mutual_information_gap,
)
from keras_vae.models import BetaVAE


def test_metrics_accept_a_model_and_sprites():
    model = BetaVAE(
        input_shape=(64, 64, 1),
        latent_dim=4,
        architecture="mlp",
        hidden_dims=(8,),
        seed=0,
    )
    calls = []

    def means(x):
        calls.append(len(x))
        return model.encode(x)[0]

    mig = mutual_information_gap(model, "sprites", num_samples=128, batch_size=64)
    assert 0.0 <= mig <= 1.0
    assert mig == mutual_information_gap(means, num_samples=128, batch_size=64)
    assert calls == [64, 64]
    score = factor_vae_score(
        model,
        num_train=4,
        num_eval=4,
        samples_per_vote=8,
        num_variance_estimate=64,
        batch_size=64,
    )
    assert 0.0 <= score <= 1.0
    dci = dci_disentanglement(model, num_train=64, num_test=64, predictor="lasso", batch_size=64)
    assert 0.0 <= dci <= 1.0


def test_sprites_factors_themselves_are_a_perfect_representation():
    # Codes read off the rendered images: the centre of mass tracks x and y
    # (up to the heart's off-centre centroid turning with orientation), so
    # their gaps are large and the right codes carry them.
    def centre_of_mass(images):
        mass = images.sum(axis=(1, 2, 3))
        rows = (images[..., 0].sum(2) * np.arange(64)).sum(1) / mass
        cols = (images[..., 0].sum(1) * np.arange(64)).sum(1) / mass
        return np.stack([cols, rows, mass], axis=-1)

    _, information, entropies = mutual_information_gap(
        centre_of_mass, num_samples=2000, num_bins=32, return_matrix=True
    )
    gaps = (information.max(0) - np.sort(information, 0)[-2]) / entropies
    names = dict(zip(sprites.FACTOR_NAMES, gaps))
    assert names["x"] > 0.5 and names["y"] > 0.5
    assert names["orientation"] < 0.1
    assert np.argmax(information[:, 3]) == 0 and np.argmax(information[:, 4]) == 1
