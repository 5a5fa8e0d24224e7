"""Run at the start of every Python process of a test run with ``LMB_FACE=pytorch_lightning``.

The test process, the workers that ``ddp_spawn`` starts and the example scripts the tests run all see
``lightning`` as ``pytorch_lightning`` (see `pytorch_lightning_project`).
"""

import os

if os.environ.get("LMB_FACE") == "pytorch_lightning":
    from pytorch_lightning_project import as_pytorch_lightning_project

    as_pytorch_lightning_project()
