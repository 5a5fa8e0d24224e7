import os
import warnings

import pytest
import torch

if os.environ.get("LMB_FACE") == "pytorch_lightning" and hasattr(__import__("lightning"), "__file__"):
    raise pytest.UsageError("LMB_FACE=pytorch_lightning needs PYTHONPATH=<absolute path of tests/pl_face>")

os.environ.setdefault("PL_DISABLE_FORK", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


# the lint's corpus: modules written the wrong way on purpose, read by tests/test_lint.py, never collected
collect_ignore = ["lint_cases"]
