"""``python -m lightning_metrics_base.lint PATH...``."""

from lightning_metrics_base.lint.cli import main

raise SystemExit(main())
