"""`log_likelihood` on torch with the decoder under `torch.compile` (a lead
for issue 24 part 4, not a library feature yet).

    python benchmarks/torch_compile_eval.py --num-images 64

Loads `vae_binarized_mnist` on the torch backend and scores `--num-images`
random binarized MNIST test images (`np.random.default_rng(0).choice`: the
file is sorted by digit) with k = 1000 through the library's
`ImportanceScorer` twice: with the model's decoder, and with the decoder
wrapped in `torch.compile(dynamic=False)` (inductor). One untimed call of
the compiled scorer first (it compiles), then `--rounds` rounds of both,
the order swapped each round; prints seconds, minutes projected to the
10k test images and the mean NLL of each call (the same noise: the NLLs
must agree). Results in benchmarks/RESULTS.md.
"""

import argparse
import os
import time

os.environ["KERAS_BACKEND"] = "torch"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-decode", type=int, default=8192)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    import keras_vae as kv
    from keras_vae.models.importance_scorer import ImportanceScorer

    (test,) = kv.datasets.load("binarized_mnist", splits=("test",))
    x = np.asarray(test[0], "float32").reshape(-1, 28, 28, 1)
    x = x[np.random.default_rng(0).choice(len(x), args.num_images, replace=False)]
    model = kv.from_preset("vae_binarized_mnist")
    decoder = model.decoder
    compiled = torch.compile(lambda z, training=False: decoder(z, training=False), dynamic=False)
    scorers = {"eager": ImportanceScorer(model), "torch.compile": ImportanceScorer(model, compiled)}
    batch = max(1, min(len(x), 500, args.max_decode))

    def score(name):
        start = time.perf_counter()
        log_px = scorers[name].log_likelihood(x, 1000, batch, 0, args.max_decode)
        return time.perf_counter() - start, float(-np.mean(log_px))

    seconds, _ = score("torch.compile")
    print(f"torch.compile first call (compiles): {seconds:.1f} s", flush=True)
    for round_index in range(args.rounds):
        order = list(scorers) if round_index % 2 == 0 else list(scorers)[::-1]
        for name in order:
            seconds, nll = score(name)
            minutes = seconds / len(x) * 10_000 / 60
            print(
                f"round {round_index + 1} {name}: {seconds:.1f} s, {minutes:.1f} min per 10k, "
                f"NLL {nll:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
