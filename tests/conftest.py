import os
import warnings

import pytest
import torch

os.environ.setdefault("PL_DISABLE_FORK", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


# the lint's corpus: modules written the wrong way on purpose, read by tests/test_lint.py, never collected
collect_ignore = ["lint_cases"]
