"""Train the demo's digits classifier from a YAML config with LightningCLI.

python docs/examples/train_cli.py fit --config docs/examples/cli_config.yaml
"""

from lightning.pytorch.cli import LightningCLI

from lightning_metrics_base.demo import DigitsClassifier, DigitsDataModule

if __name__ == "__main__":
    LightningCLI(DigitsClassifier, DigitsDataModule)
