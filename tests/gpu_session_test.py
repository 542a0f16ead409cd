"""The time-budget logic, options and NLL summaries of benchmarks/gpu/session.py
(the GPU session's driver); pure Python, no model runs (its CPU dry run is
`bash benchmarks/gpu/session.sh --smoke --block-tf`)."""

import importlib.util
import re
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
    assert smoke.nll_samples < full.nll_samples == 5000
    assert "--num-images" in smoke.nll and full.nll == []


def test_prepare_keeps_the_weights_of_the_nll_presets():
    prepare = (ROOT / "benchmarks/gpu/prepare.sh").read_text()
    keep = re.search(r'^KEEP="([^"]*)"', prepare, re.MULTILINE).group(1).split()
    assert keep == list(session.NLL_PRESETS) == session.parse_args([]).nll_presets
    for preset in keep:
        assert (ROOT / "keras_vae/preset_files" / preset / "model.weights.h5").is_file()


def test_budget_must_exceed_margin():
    with pytest.raises(SystemExit):
        session.parse_args(["--budget-s", "30", "--margin-s", "45"])


def test_nll_summary_of_a_stopped_worker_counts_what_it_measured():
    chunk = {"kind": "nll_chunk", "seconds": 1.0}
    records = [
        {"kind": "nll_start", "preset": "p", "num_samples": 5000, "test_images": 10},
        {**chunk, "images": 3, "sum_log_px": -240.0, "sum_sq_log_px": 3 * 6400.0},
        {**chunk, "images": 1, "sum_log_px": -84.0, "sum_sq_log_px": 84.0**2},
    ]
    summary = session.summarize_nll(records)
    assert summary["images"] == 4 and not summary["complete"]
    assert summary["nll"] == 81.0 and summary["nll_stderr"] == 0.866  # sqrt(3 / 4)
    assert session.summarize_nll(records[:1]) == {
        "images": 0,
        "num_samples": 5000,
        "test_images_asked": 10,
        "complete": False,
    }
    assert session.summarize_nll([]) == {"images": 0}
