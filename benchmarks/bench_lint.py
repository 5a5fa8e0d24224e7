"""How fast `lightning-metrics-lint` runs: a tree of module files, and one file from a cold start.

The tree is made of the test corpus's modules (tests/lint_cases), each copied under new names until
there are N files, in a temporary folder. Reported: the wall time of the command over the whole tree
and over one file, each started as a new process (interpreter start-up and imports included, as in
pre-commit), the median of several runs, and whether torch was imported.

    python benchmarks/bench_lint.py              # 1,000 files, 5 runs
    python benchmarks/bench_lint.py --quick      # 50 files, 2 runs
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "lint_cases"


def make_tree(root: Path, files: int) -> None:
    sources = [path.read_text() for path in sorted(CORPUS.glob("*.py"))]
    for index in range(files):
        package = root / f"package_{index // 50}"
        package.mkdir(exist_ok=True)
        source = sources[index % len(sources)].replace("class Model(", f"class Model{index}(")
        (package / f"module_{index}.py").write_text(source)


def timed(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "lightning_metrics_base.lint", *args], capture_output=True, text=True
    )
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    files, runs = (50, 2) if args.quick else (1000, 5)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_tree(root, files)
        one = next(root.rglob("module_0.py"))
        tree_times, file_times = [], []
        for _ in range(runs):
            seconds, result = timed("--format", "json", str(root))
            assert result.returncode in (0, 1), result.stderr
            tree_times.append(seconds)
            seconds, _ = timed(str(one))
            file_times.append(seconds)
        findings = result.stdout.count('"code"')
    probe = "import sys, lightning_metrics_base.lint; print('torch' in sys.modules, 'lightning' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip()
    print(
        f"tree of {files} files: {statistics.median(tree_times):.2f} s median over {runs} runs"
        f" (min {min(tree_times):.2f}, max {max(tree_times):.2f}); {findings} findings"
    )
    print(
        f"one file: {statistics.median(file_times):.3f} s median (min {min(file_times):.3f}, max {max(file_times):.3f})"
    )
    print(f"torch imported, lightning imported: {imported}")


if __name__ == "__main__":
    main()
