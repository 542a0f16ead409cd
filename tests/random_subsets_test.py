"""No notebook, doc or script evaluates or shows a prefix of the binarized
MNIST test set.

That file is sorted by digit (980 zeros first, then the ones, ...), so
`x_test[:1000]` is all zeros and `x_test[0]`, `x_test[1]` are two zeros: a
figure measured there is not the test set's. Wherever `binarized_mnist` is
loaded (a notebook, a fenced code block of the README or docs, a script),
subsets must be drawn at random, e.g.
`x_test[np.random.default_rng(0).choice(len(x_test), n, replace=False)]`.
A pure text check: no model runs.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# x_test[:n], x_test[a:b], x_test[n : 2 * n], x_test[0] (not x_test[indices]).
PREFIX = re.compile(r"\bx_test\[\s*[\w\s*+-]*:|\bx_test\[\s*\d+\s*\]")
FENCE = re.compile(r"```(?:python|py)\n(.*?)```", re.DOTALL)


def scopes(path):
    """The pieces of `path` read as one program each: a notebook's code
    cells together, each fenced Python block of a Markdown file, a whole
    Python file."""
    text = path.read_text()
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        return ["\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")]
    if path.suffix == ".md":
        return FENCE.findall(text)
    return [text]


def prefixes(code):
    """The prefix slices of `x_test` in `code`, if it loads binarized MNIST."""
    if "binarized_mnist" not in code:
        return []
    return PREFIX.findall(code)


def files():
    patterns = ("colab/*.ipynb", "*.md", "docs/*.md", "zoo/*.md", "zoo/*.py")
    patterns += ("benchmarks/*", "keras_vae/**/*.py")
    found = sorted({p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()})
    return [p for p in found if p.suffix in (".ipynb", ".md", ".py")]


def test_the_scan_finds_the_documents():
    names = {p.relative_to(ROOT).as_posix() for p in files()}
    assert {"colab/quickstart.ipynb", "README.md", "docs/vq_vae.md"} <= names


@pytest.mark.parametrize(
    "code, found",
    [
        ('x_test = load("binarized_mnist")\nm.elbo(x_test[:1000])', ["x_test[:"]),
        ('load("binarized_mnist")\nf(x_test[0], x_test[1])', ["x_test[0]", "x_test[1]"]),
        ('load("binarized_mnist")\nvalid = x_test[n : 2 * n]', ["x_test[n :"]),
        ('load("binarized_mnist")\nx = x_test[rng.choice(len(x_test), 10, replace=False)]', []),
        ('load("mnist")\nx = x_test[:10]', []),  # MNIST's test file is not sorted
    ],
)
def test_prefix_detector(code, found):
    assert prefixes(code) == found


@pytest.mark.parametrize("path", files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_prefix_of_the_sorted_test_set(path):
    bad = [match for code in scopes(path) for match in prefixes(code)]
    assert not bad, (
        f"{path.relative_to(ROOT)} takes a prefix of the digit-sorted binarized MNIST "
        f"test set ({bad}): draw a random subset instead, e.g. "
        "x_test[np.random.default_rng(0).choice(len(x_test), n, replace=False)]"
    )
