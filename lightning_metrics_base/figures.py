"""Draw results that are not scalars (confusion matrices, curves) and send them to the loggers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lightning.pytorch.loggers import Logger
from torch import Tensor
from torchmetrics import Metric


def matplotlib_available() -> bool:
    """Tell whether matplotlib (the ``plot`` extra) can be imported."""
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        return False
    return True


def wants_figure(value: Any) -> bool:
    """Tell whether a result is drawn rather than logged: a tensor of 2+ dimensions, or a curve.

    Examples:
        >>> import torch
        >>> wants_figure(torch.eye(3)), wants_figure(torch.ones(3)), wants_figure((torch.ones(3), torch.ones(3)))
        (True, False, True)
    """
    if isinstance(value, Tensor):
        return value.ndim >= 2
    return isinstance(value, (tuple, list)) and len(value) > 0


def takes_figures(logger: Logger) -> bool:
    """Tell whether ``logger`` accepts figures: TensorBoard, MLflow, or a logger with ``log_image`` (W&B)."""
    return hasattr(logger, "log_image") or _figure_method(logger) is not None


def figure_notices(loggers: Iterable[Logger], tag: str, noticed: set[str]) -> list[str]:
    """One notice per logger type that cannot take figures and was not noticed yet (``noticed`` is updated).

    Examples:
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> noticed = set()
        >>> figure_notices([CSVLogger("/tmp")], "val/confmat", noticed)[0][:46]
        'CSVLogger cannot take figures: val/confmat and'
        >>> figure_notices([CSVLogger("/tmp")], "val/confmat", noticed)
        []
    """
    notices = []
    for logger in loggers:
        kind = type(logger).__name__
        if not takes_figures(logger) and kind not in noticed:
            noticed.add(kind)
            notices.append(
                f"{kind} cannot take figures: {tag} and other results of two or more dimensions are not sent"
                " to it (read them from `epoch_metrics`, or add a TensorBoard or MLflow logger)."
            )
    return notices


def _figure_method(logger: Logger) -> str | None:
    # Only loggers whose experiment is created already or cheaply; `experiment` starts a run otherwise.
    experiment = getattr(logger, "experiment", None)
    for method in ("add_figure", "log_figure"):
        if hasattr(experiment, method):
            return method
    return None


def log_figure(loggers: Iterable[Logger], tag: str, metric: Metric, value: Any, step: int) -> bool:
    """Draw ``value`` with the metric's own ``plot()`` and send the figure to every logger that accepts one.

    Args:
        loggers: the trainer's loggers; those that cannot take figures are skipped.
        tag: the figure's name, e.g. ``"val/confmat"``.
        metric: the metric that computed ``value``; its ``plot`` draws it.
        value: what the metric's ``compute()`` returned.
        step: the global step the figure belongs to.

    Returns:
        Whether a figure was drawn (``False`` without matplotlib or when the metric cannot plot).
    """
    loggers = [logger for logger in loggers if takes_figures(logger)]
    if not loggers or not matplotlib_available():
        return False
    import matplotlib.pyplot as plt

    try:
        figure, _ = metric.plot(value)
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        return False
    try:
        for logger in loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(key=tag, images=[figure], step=step)
            elif _figure_method(logger) == "log_figure":  # MLflow: an artifact per tag and step
                artifact = f"figures/{tag.replace('/', '_')}_step_{step}.png"
                logger.experiment.log_figure(logger.run_id, figure, artifact)  # type: ignore[attr-defined]
            else:
                logger.experiment.add_figure(tag, figure, global_step=step)  # type: ignore[attr-defined]
    finally:
        plt.close(figure)
    return True
