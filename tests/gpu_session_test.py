"""The time-budget logic, options and packing of benchmarks/gpu/session.py
(the GPU session's driver); pure Python, no model runs (its CPU dry run is
`bash benchmarks/gpu/session.sh --smoke --block-tf`)."""

import importlib.util
import os
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_session", ROOT / "benchmarks/gpu/session.py")
session = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(session)


def test_benchmark_shares_favour_jax_and_never_exceed_what_is_left():
    assert session.plan_benchmarks(["jax", "torch"], 500, 300) == 180
    assert session.plan_benchmarks(["torch", "tensorflow"], 500, 300) == 150
    assert session.plan_benchmarks(["torch"], 100, 300) == 100  # the budget's end first
    assert session.plan_benchmarks(["jax"], -5, 300) == 0
    assert session.plan_benchmarks([], 100, 300) == 0


def test_smoke_options_shrink_every_phase():
    full, smoke = session.parse_args([]), session.parse_args(["--smoke"])
    assert smoke.budget_s < full.budget_s and smoke.bench_s < full.bench_s
    assert "--epochs" in smoke.train and full.train == []
    assert smoke.run_dir != full.run_dir  # a smoke run never touches the real run folder
    assert full.run_dir == "zoo/training_state/hvae_binarized_mnist"


def test_budget_must_exceed_margin():
    with pytest.raises(SystemExit):
        session.parse_args(["--budget-s", "30", "--margin-s", "45"])


def test_pack_splits_a_large_run_folder_into_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(session, "ROOT", tmp_path)
    monkeypatch.setattr(session, "PART_BYTES", 1000)
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "weights.bin").write_bytes(os.urandom(3500))  # incompressible: 4 parts
    (run / "run.lock").write_text("123\n")
    out = tmp_path / "out"
    out.mkdir()
    packed = session.pack(["runs/r", "runs/absent"], out)
    assert packed["folders"] == ["runs/r"] and len(packed["files"]) == 4
    joined = out / "joined.tar.gz"
    joined.write_bytes(b"".join((out / name).read_bytes() for name in packed["files"]))
    with tarfile.open(joined) as tar:
        names = tar.getnames()
    assert "runs/r/weights.bin" in names and "runs/r/run.lock" not in names
    monkeypatch.setattr(session, "PART_BYTES", 500)  # 8 parts: over the 8 files of $OUT
    assert "error" in session.pack(["runs/r"], tmp_path / "out")
