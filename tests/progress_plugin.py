"""pytest plugin of tests/run_backends.py: a line per finished test, to a file.

Loaded with `-p tests.progress_plugin`; writes to the file named by the
`KERAS_VAE_PROGRESS_FILE` environment variable (nothing without it): first
`collected N`, then `<outcome> <node id>` for each test once its outcome is
known (`passed`, `failed` or `skipped`; a failed setup or teardown writes
`failed` too). The runner reads it while the backend runs.
"""

import os

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
