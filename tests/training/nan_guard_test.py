import numpy as np
import pytest

from keras_vae.callbacks import NaNGuard
from keras_vae.models import VAE


def test_guard_raises_and_restores():
    model = VAE(input_shape=(4,), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0)
    model.compile(optimizer="adam")
    guard = NaNGuard()
    guard.set_model(model)
    guard.on_epoch_begin(0)
    before = model.get_weights()
    model.set_weights([w * np.nan if w.dtype.kind == "f" else w for w in before])
    with pytest.raises(FloatingPointError, match="epoch 1, batch 3"):
        guard.on_train_batch_end(2, {"loss": float("nan"), "kl_loss": 1.0})
    for restored, original in zip(model.get_weights(), before):
        np.testing.assert_array_equal(restored, original)
    guard.on_train_batch_end(3, {"loss": 1.0})  # finite logs pass
