"""Smoke runs of the benchmarks at a tiny size: they run and report; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pl_face.pytorch_lightning_project import pristine_environment

pytestmark = pytest.mark.slow  # `-m "not slow"` leaves these out

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_overhead_benchmark_reports_every_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_overhead.py"), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for label in (
        "ours(log_train_step)/best",
        "ours(log_train_step)/typical",
        "ours(default)/lean",
        "ours(default)/bare",
        "ours(buffer_batches=1)/lean",
    ):
        assert re.search(rf"{re.escape(label)}\s+\d+\.\d+\s+\(min", result.stdout), label
    assert "16 metrics" in result.stdout and "compute-heavy" in result.stdout


def test_collective_counts_sync_once_per_compute_group() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "count_collectives.py"), "ours", "lean"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    gathers = {
        name: float(count)
        for name, count in re.findall(r"RESULT (\w+): per epoch:.*?all_gather ([\d.]+)", result.stdout)
    }
    # 2 stages x 4 shared states x 2 gathers (sizes, data) for ours; 4 metrics x that for the lean code
    assert gathers == {"Ours": 16.0, "Lean": 64.0}


def test_gpu_benchmark_says_when_there_is_no_gpu() -> None:
    import torch

    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_syncs.py"), "--rounds", "1"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if torch.cuda.is_available():
        assert "metric-caused syncs, ours / lean" in result.stdout
    else:
        assert "no CUDA device: nothing measured" in result.stdout


def test_lint_benchmark_reports_tree_and_file_times() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_lint.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        env=pristine_environment(),  # what a fresh interpreter imports: no rewrite of the namespaces
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"tree of 50 files: \d+\.\d+ s median", result.stdout)
    assert re.search(r"one file: \d+\.\d+ s median", result.stdout)
    assert "torch imported, lightning imported: False False" in result.stdout


def test_log_check_benchmark_reports_a_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_log_check.py"), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"with MetricLogCheck / without: \d+\.\d+ \(min", result.stdout)


def test_workload_benchmark_splits_the_metric_time_into_parts() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_workloads.py"), "--quick", "--parts", "segmentation", "many"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for workload, parts in (("segmentation", ("class indices", "input checks", "updates")), ("many", ("sorts",))):
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"{workload} parts:"))
        assert "metric time" in line and "epoch-end compute" in line, line
        assert all(re.search(rf"{part} \d+%", line) for part in parts), line


def test_workload_benchmark_checks_values_and_reports_ratios() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_workloads.py"), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for workload in ("segmentation", "regression", "many", "tiny"):
        assert re.search(rf"{workload}: ours/lean \d+\.\d+ \(min .*same \d+ logged values", result.stdout), workload
    assert re.search(r"per_step: ours/best \d+\.\d+ \(min .*same \d+ logged values", result.stdout)
    # against the floor (a module logging its loss alone) everywhere, and the least work by hand where written
    for workload in ("segmentation", "regression", "many", "tiny", "per_step"):
        assert re.search(rf"{workload}: .*ours/bare \d+\.\d+ \(min", result.stdout), workload
    for workload in ("segmentation", "many"):
        assert re.search(rf"{workload}: .*ours/least-work \d+\.\d+ \(min", result.stdout), workload
    # the buffer stays within the bound (16 MiB), and its flush allocates less than a copy of it
    found = re.findall(
        r"buffer (\d+\.\d) MiB \(\d+ of \d+ batches written\); at its flush (\d+\.\d) MiB", result.stdout
    )
    assert len(found) == 2 and all(float(held) <= 16.0 for held, _ in found), result.stdout
