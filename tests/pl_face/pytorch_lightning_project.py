"""Run the behaviour tests as a ``pytorch_lightning`` project runs them.

``LMB_FACE=pytorch_lightning PYTHONPATH="$PWD/tests/pl_face" python -m pytest -q`` (an absolute path:
the tests start scripts in other folders). This folder's ``sitecustomize`` calls
`as_pytorch_lightning_project` at the start of every Python process of the run, before any test
module is imported. ``lightning``, ``lightning.pytorch...`` and ``lightning.fabric...`` become the
``pytorch_lightning`` and ``lightning_fabric`` modules (the import rewrite a project on that
namespace has), and the package's exports come from its ``pytorch_lightning`` face. The tests are the
same files, unchanged; the few that check what a fresh interpreter imports start theirs without the
variable (`pristine_environment`).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import types

FACE = os.environ.get("LMB_FACE", "lightning")


def pristine_environment() -> dict[str, str]:
    """The environment for a fresh interpreter that must see the real namespaces (no rewrite)."""
    return {name: value for name, value in os.environ.items() if name not in ("LMB_FACE", "PYTHONPATH")}


def _alias(real_root: str, alias_root: str) -> types.ModuleType:
    root = importlib.import_module(real_root)
    sys.modules[alias_root] = root
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{real_root}."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # an integration whose optional dependency is missing
            continue
        sys.modules[alias_root + info.name[len(real_root) :]] = module
    return root


def as_pytorch_lightning_project() -> None:
    """Make ``lightning`` mean ``pytorch_lightning`` in this process, and the package's exports its face."""
    if isinstance(sys.modules.get("lightning"), types.ModuleType) and hasattr(sys.modules["lightning"], "__file__"):
        raise RuntimeError("lightning was imported before the tests could run as a pytorch_lightning project")
    if "lightning" in sys.modules:
        return  # done already in this process
    pytorch = _alias("pytorch_lightning", "lightning.pytorch")
    fabric = _alias("lightning_fabric", "lightning.fabric")
    shim = types.ModuleType("lightning", "pytorch_lightning, seen as `lightning` by the tests")
    shim.__path__ = []  # a package: `lightning.pytorch` and `lightning.fabric` are its (aliased) modules
    shim.__dict__.update({name: getattr(pytorch, name) for name in dir(pytorch) if not name.startswith("__")})
    shim.__dict__.update({"pytorch": pytorch, "fabric": fabric, "__version__": pytorch.__version__})
    sys.modules["lightning"] = shim
    import lightning_metrics_base

    lightning_metrics_base._HOMES.update(
        {
            "MetricAwareModule": "lightning_metrics_base.pytorch_lightning",
            "MetricLogCheck": "lightning_metrics_base.pytorch_lightning",
        }
    )
