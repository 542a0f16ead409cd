"""tests/progress_plugin.py's `--shard I/N`, which tests/run_backends.py uses
to split torch's run: N shards run every test file exactly once."""

import pytest

from tests import progress_plugin

FILES = [f"tests/{name}_test.py" for name in "edcba"]


def test_shards_run_every_file_once_and_keep_files_whole():
    shards = [progress_plugin.shard_files(FILES + FILES[:2], i, 3) for i in range(3)]
    assert sorted(f for shard in shards for f in shard) == sorted(FILES)
    assert shards[0] == {"tests/a_test.py", "tests/d_test.py"}
    assert progress_plugin.shard_files(FILES, 0, 1) == set(FILES)
    assert progress_plugin.shard_files(FILES, 5, 6) == set()  # pytest exits 5: no tests


@pytest.mark.parametrize("text", ["1", "a/3", "3/3", "-1/2", "1/0"])
def test_a_bad_shard_is_a_usage_error(text):
    with pytest.raises(pytest.UsageError, match="--shard"):
        progress_plugin.parse_shard(text)


def test_a_shard_parses():
    assert progress_plugin.parse_shard("2/4") == (2, 4)
