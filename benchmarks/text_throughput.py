"""Training throughput of the Penn Treebank text presets, per backend.

Usage:
    python benchmarks/text_throughput.py [--backends tensorflow jax torch]
        [--presets text_vae_ptb lstm_lm_ptb] [--sentences 3200]

Each (preset, backend) pair runs in its own process: build the preset's
untrained model from its recipe (`zoo/recipes/<preset>.json`: 256-unit LSTMs,
the 10k vocabulary, dropout) and compile it as the runner does
(Adam with gradient clipping, jit where the backend supports it), warm up
on a few batches, then time one epoch over the first `--sentences`
training sentences in the recipe's length-bucketed batches of 32. The
last column extrapolates to one epoch of the 42,068 training sentences
(the recipes train up to 100 epochs).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, sys, time
import keras_vae as kv
from keras_vae.datasets.text_batches import TextBatches
from keras_vae.runner.families import text
from zoo import recipes

preset, num_sentences = sys.argv[1], int(sys.argv[2])
recipe = recipes.load(preset)
(train, _), = kv.datasets.load("ptb", splits=("train",))
vocabulary = kv.layers.Vocabulary.from_sentences(train, name="vocabulary")
model = text.compile_model(text.Text().build_model(recipe, {"vocabulary": vocabulary}), recipe)

def batches(sentences):
    return TextBatches(sentences, model.tokenize, batch_size=recipe["batch_size"], seed=0,
                       max_length=model.max_length)

model.fit(batches(train[:num_sentences]), epochs=1, verbose=0)  # compile every bucket shape
sentences = train[:num_sentences]
tokens = int(sum(model.num_tokens(sentences)))
start = time.perf_counter()
model.fit(batches(sentences), epochs=1, verbose=0)
seconds = time.perf_counter() - start
print(json.dumps({"sentences_per_s": len(sentences) / seconds, "tokens_per_s": tokens / seconds,
                  "epoch_s": len(train) / (len(sentences) / seconds)}))
"""


def run(backend, preset, num_sentences):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", WORKER, preset, str(num_sentences)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{backend}/{preset} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--presets", nargs="+", default=["text_vae_ptb", "lstm_lm_ptb"])
    parser.add_argument("--sentences", type=int, default=3200)
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, {args.sentences} sentences, batch 32"
    )
    print("| preset | backend | sentences/s | tokens/s | one epoch (42,068 sentences) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for preset in args.presets:
        for backend in args.backends:
            r = run(backend, preset, args.sentences)
            print(
                f"| {preset} | {backend} | {r['sentences_per_s']:.0f} | "
                f"{r['tokens_per_s']:.0f} | {r['epoch_s'] / 60:.1f} min |",
                flush=True,
            )


if __name__ == "__main__":
    main()
