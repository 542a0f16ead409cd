"""Sends requests to exported SavedModels; reports each answer or error.

Usage: python serving_requests_worker.py CASES.pkl RESULTS.pkl

`CASES.pkl` maps a case name to `(saved_model_dir, signature, feed)`, the
feed a dict of NumPy arrays. The worker loads each SavedModel once (plain
TensorFlow, as TF Serving runs it), calls the signature and writes, for
each case, `("ok", {output: array})` or `("error", "Type: message")`. It
exits 0 when every request was answered; a request that aborts the
process (SIGABRT) ends it with a signal instead, which is what
`tests/export_test.py` checks for.
"""

import os
import pickle
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402


def main(cases_path, results_path):
    with open(cases_path, "rb") as f:
        cases = pickle.load(f)
    loaded, results = {}, {}
    for name, (path, signature, feed) in cases.items():
        if path not in loaded:
            loaded[path] = tf.saved_model.load(path)
        function = loaded[path].signatures[signature]
        try:
            outputs = function(**{k: tf.constant(v) for k, v in feed.items()})
            results[name] = ("ok", {k: v.numpy() for k, v in outputs.items()})
        except Exception as error:  # noqa: BLE001  (any error is an answer)
            results[name] = ("error", f"{type(error).__name__}: {error}")
        print(name, results[name][0], flush=True)
    with open(results_path, "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
