"""Every example in the package's docstrings runs and prints what it shows
(STYLE.md: docstrings carry runnable examples), on every backend."""

import doctest
import importlib
import pkgutil

import pytest

import keras_vae

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def modules_with_examples():
    names = []
    for info in pkgutil.walk_packages(keras_vae.__path__, "keras_vae."):
        module = importlib.import_module(info.name)
        tests = doctest.DocTestFinder().find(module, module.__name__)
        if any(test.examples for test in tests):
            names.append(info.name)
    return ["keras_vae", *sorted(names)]


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
