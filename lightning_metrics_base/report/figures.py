"""Draw results that are not scalars (confusion matrices, curves) and send them to the loggers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from torchmetrics import Metric

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger


def matplotlib_available() -> bool:
    """Tell whether matplotlib (the ``plot`` extra) can be imported."""
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        return False
    return True


def takes_figures(logger: Logger) -> bool:
    """Tell whether ``logger`` accepts figures: TensorBoard, MLflow, or a logger with ``log_image`` (W&B)."""
    return hasattr(logger, "log_image") or _figure_method(logger) is not None


def _figure_method(logger: Logger) -> str | None:
    # Only loggers whose experiment is created already or cheaply; `experiment` starts a run otherwise.
    experiment = getattr(logger, "experiment", None)
    for method in ("add_figure", "log_figure"):
        if hasattr(experiment, method):
            return method
    return None


class FigureSender:
    """Draws results with the metric's own ``plot()`` and sends each figure to every logger that takes one.

    It remembers what it said and sent, so that no notice is given twice and no figure overwrites
    another (a second ``trainer.test()`` at the same step keeps both figures in MLflow).

    Examples:
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> sender = FigureSender()
        >>> sender.notices([CSVLogger("/tmp")], "val/confmat")[0][:46]
        'CSVLogger cannot take figures: val/confmat and'
        >>> sender.notices([CSVLogger("/tmp")], "test/confmat")
        []
    """

    def __init__(self) -> None:
        self._said: set[str] = set()
        self._artifacts: set[str] = set()

    def notices(self, loggers: Iterable[Logger], tag: str) -> list[str]:
        """What cannot be drawn or sent for ``tag``, each cause said once per module: its notice and a remedy."""
        loggers = list(loggers)
        takers = [type(logger).__name__ for logger in loggers if takes_figures(logger)]
        causes: dict[str, str] = {}
        for logger in loggers:
            kind = type(logger).__name__
            if kind in takers:
                continue
            remedy = (
                f"they go to {', '.join(sorted(set(takers)))}"
                if takers
                else "add a TensorBoard or MLflow logger, or pass `log_figures=False` to silence this"
            )
            causes[kind] = (
                f"{kind} cannot take figures: {tag} and other results of two or more dimensions are not sent to it"
                f" (read them from `epoch_metrics`; {remedy})."
            )
        if takers and not matplotlib_available():
            causes["matplotlib"] = (
                f"matplotlib is not installed, so {tag} and other results of two or more dimensions are not drawn"
                f" for {', '.join(sorted(set(takers)))}: `pip install matplotlib` (or the package's `plot` extra),"
                " or pass `log_figures=False`."
            )
        said = [notice for cause, notice in causes.items() if cause not in self._said]
        self._said.update(causes)
        return said

    def forget_notices(self) -> None:
        """Let every notice be given once more (at the start of a fit)."""
        self._said.clear()

    def send(self, loggers: Iterable[Logger], tag: str, metric: Metric, value: Any, step: int, epoch: int) -> list[str]:
        """Draw ``value`` and send the figure to every logger that accepts one; return what could not be done.

        Args:
            loggers: the trainer's loggers; those that cannot take figures are skipped.
            tag: the figure's name, e.g. ``"val/confmat"``.
            metric: the metric that computed ``value``; its ``plot`` draws it.
            value: what the metric's ``compute()`` returned.
            step: the global step the figure belongs to (that of the epoch's scalars).
            epoch: the epoch, named in the figure's title.

        Returns:
            A notice, once per metric class, when the metric cannot draw its result (nothing is sent
            then; the value stays in ``epoch_metrics``); otherwise nothing.
        """
        loggers = [logger for logger in loggers if takes_figures(logger)]
        if not loggers or not matplotlib_available():
            return []
        import matplotlib.pyplot as plt

        try:
            figure, _ = metric.plot(value)
        except (NotImplementedError, TypeError, ValueError, AttributeError) as err:
            cause = f"plot:{type(metric).__name__}"
            if cause in self._said:
                return []
            self._said.add(cause)
            return [
                f"{type(metric).__name__}.plot() cannot draw {tag} ({type(err).__name__}: {err}), so no figure is"
                " sent for it; the value stays in `epoch_metrics`. Leave its stage out of `log_figures` to"
                " silence this."
            ]
        figure.suptitle(f"{tag}, epoch {epoch}")
        try:
            for logger in loggers:
                if hasattr(logger, "log_image"):
                    logger.log_image(key=tag, images=[figure], step=step)
                elif _figure_method(logger) == "log_figure":  # MLflow: one artifact per figure, never overwritten
                    logger.experiment.log_figure(logger.run_id, figure, self._artifact(tag, step))  # type: ignore[attr-defined]
                else:
                    logger.experiment.add_figure(tag, figure, global_step=step)  # type: ignore[attr-defined]
        finally:
            plt.close(figure)
        return []

    def _artifact(self, tag: str, step: int) -> str:
        base = f"figures/{tag.replace('/', '_')}_step_{step}"
        name, count = f"{base}.png", 1
        while name in self._artifacts:
            count += 1
            name = f"{base}_{count}.png"
        self._artifacts.add(name)
        return name
