"""The padding warning: said once per stage and dataloader."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from lightning_metrics_base.report.padding import PaddingWarnings, padding_warning


def padded(size: int, drop_last: bool = False) -> DataLoader:
    data = TensorDataset(torch.zeros(size, 1))
    return DataLoader(data, sampler=DistributedSampler(data, num_replicas=2, rank=0, drop_last=drop_last))


def test_only_padded_samplers_warn() -> None:
    assert padding_warning(padded(10), "val") is None
    assert padding_warning(padded(11, drop_last=True), "val") is None
    assert padding_warning(object(), "val") is None
    assert "repeats 1 of them" in (padding_warning(padded(11), "test", 1) or "")


def test_once_per_stage_and_dataloader() -> None:
    once = PaddingWarnings()
    assert len(once.new_warnings("val", [padded(11), padded(13)])) == 2
    assert once.new_warnings("val", [padded(11), padded(13)]) == []
    assert len(once.new_warnings("test", [padded(11)])) == 1
    assert len(once.new_warnings("test", padded(11))) == 0  # Lightning hands a single dataloader as it is
    assert len(PaddingWarnings().new_warnings("test", padded(11))) == 1
