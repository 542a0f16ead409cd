import keras
import numpy as np

from keras_vae.runner import KeepBest


def test_keep_best_saves_only_improvements_and_survives_restarts(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keep = KeepBest(tmp_path, monitor="val_objective")
    keep.set_model(model)
    keep.on_epoch_end(0, {"val_objective": 3.0})
    best = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in best])
    keep.on_epoch_end(1, {"val_objective": 4.0})  # worse: not saved
    assert keep.record == {"val_objective": 3.0, "epoch": 1}

    restarted = KeepBest(tmp_path, monitor="val_objective")
    assert restarted.record == {"val_objective": 3.0, "epoch": 1}
    model.load_weights(tmp_path / "best.weights.h5")
    for saved, kept in zip(model.get_weights(), best):
        np.testing.assert_array_equal(saved, kept)
    assert not list(tmp_path.glob("*.part*"))  # written atomically
