import ast
import pathlib

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import callbacks, models
from keras_vae.models import VAE
from keras_vae.training import NaNGuard, with_nan_guard


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


def test_guard_lives_in_training_and_stays_importable_from_callbacks():
    assert callbacks.NaNGuard is NaNGuard
    assert kv.NaNGuard is NaNGuard
    names = [type(c).__name__ for c in with_nan_guard([callbacks.SampleGrid(".")])]
    assert names == ["SampleGrid", "NaNGuard"]


def test_models_import_no_callbacks():
    """Models depend on training, never on the callbacks users add."""
    for path in pathlib.Path(models.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any("callbacks" in name for name in names), f"{path.name} imports {names}"


def optimizer_state(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables]


def diverging_vae():
    model = VAE(input_shape=(4,), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


X = np.random.default_rng(0).random((8, 4)).astype("float32")


def test_nan_stop_restores_the_optimizer_state_of_the_last_good_point():
    model = diverging_vae()
    model.fit(X, epochs=1, batch_size=4, verbose=0)  # 2 steps: moments set
    model.optimizer.learning_rate.assign(1e30)  # diverges within two steps
    weights, state = model.get_weights(), optimizer_state(model)
    paths = [v.path for v in model.optimizer.variables]
    assert int(state[paths.index(model.optimizer.iterations.path)]) == 2
    assert any(np.any(value != 0) for value in state[2:])
    with pytest.raises(FloatingPointError, match="optimizer's state were restored"):
        model.fit(X, epochs=3, batch_size=2, verbose=0)
    for path, restored, original in zip(paths, optimizer_state(model), state):
        np.testing.assert_array_equal(restored, original, err_msg=path)
    for restored, original in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(restored, original)
    # The retry at a sane learning rate goes on from there.
    model.optimizer.learning_rate.assign(1e-3)
    history = model.fit(X, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 4


def test_nan_stop_in_the_first_epoch_leaves_a_fresh_optimizer():
    # TensorFlow creates the optimizer's moments on the first step: the
    # guard builds them first so that there is a state to restore.
    model = diverging_vae()
    model.optimizer.learning_rate.assign(1e30)
    with pytest.raises(FloatingPointError, match="optimizer's state were restored"):
        model.fit(X, epochs=1, batch_size=2, verbose=0)
    assert len(model.optimizer.variables) > 2  # iteration, learning rate, moments
    for variable, value in zip(model.optimizer.variables, optimizer_state(model)):
        if variable.path != model.optimizer.learning_rate.path:
            assert not np.any(value), variable.path
