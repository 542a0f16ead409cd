"""pytest plugin of tests/run_backends.py: a line per finished test, to a
file, and `--shard I/N`.

Loaded with `-p tests.progress_plugin`; writes to the file named by the
`KERAS_VAE_PROGRESS_FILE` environment variable (nothing without it): first
`collected N`, then `<outcome> <node id>` for each test once its outcome is
known (`passed`, `failed` or `skipped`; a failed setup or teardown writes
`failed` too). The runner reads it while the backend runs.

`--shard I/N` keeps the tests of every N-th test file, starting at the I-th
(0-based, files in path order) and deselects the others: N runs with
`--shard 0/N` ... `--shard N-1/N` run each test once, and a file's tests
(and its module fixtures) stay in one run.
"""

import os

import pytest

_PATH = os.environ.get("KERAS_VAE_PROGRESS_FILE")


def _write(line):
    if _PATH:
        with open(_PATH, "a") as progress:
            progress.write(line + "\n")


def pytest_collection_finish(session):
    _write(f"collected {len(session.items)}")


def pytest_runtest_logreport(report):
    if report.when == "call" or report.failed or (report.skipped and report.when == "setup"):
        outcome = "failed" if report.failed else report.outcome
        _write(f"{outcome} {report.nodeid}")


def parse_shard(text):
    """`"I/N"` -> `(I, N)`; a usage error names a bad value."""
    index, _, count = text.partition("/")
    try:
        index, count = int(index), int(count)
    except ValueError:
        raise pytest.UsageError(f"--shard takes I/N, e.g. 0/3; got {text!r}") from None
    if not 0 <= index < count:
        raise pytest.UsageError(f"--shard {text}: need 0 <= I < N")
    return index, count


def shard_files(paths, index, count):
    """The test files of shard `index` of `count`: every `count`-th in path order."""
    return set(sorted(set(paths))[index::count])


def pytest_addoption(parser):
    parser.addoption("--shard", default=None, help="I/N: run only shard I of N (by test file)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--shard") is None:
        return
    kept = shard_files([item.path for item in items], *parse_shard(config.getoption("--shard")))
    config.hook.pytest_deselected(items=[item for item in items if item.path not in kept])
    items[:] = [item for item in items if item.path in kept]
