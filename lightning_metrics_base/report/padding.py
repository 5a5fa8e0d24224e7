"""Detect evaluation data that a `DistributedSampler` pads with repeated samples."""

from __future__ import annotations

from collections.abc import Sized

from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler


def padding_warning(dataloader: object, stage: str, dataloader_idx: int = 0) -> str | None:
    """Return a warning when ``dataloader``'s sampler repeats samples to split evenly, else ``None``.

    `DistributedSampler` (which Lightning inserts under DDP) pads a dataset whose size does not
    divide by the number of processes with repeated samples, and every metric then counts those
    samples twice.

    Args:
        dataloader: the stage's dataloader.
        stage: the stage name, quoted in the message.
        dataloader_idx: the dataloader's index, quoted in the message.

    Returns:
        The warning text, naming the dataset size and the number of processes, or ``None``.

    Examples:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> data = TensorDataset(torch.zeros(301, 2))
        >>> sampler = DistributedSampler(data, num_replicas=2, rank=0, shuffle=False)
        >>> print(padding_warning(DataLoader(data, sampler=sampler), "val"))  # doctest: +ELLIPSIS
        val dataloader 0: its 301 samples do not split evenly across 2 processes; ...
        >>> padding_warning(DataLoader(data), "val") is None
        True
    """
    if not isinstance(dataloader, DataLoader):
        return None
    sampler = dataloader.sampler
    if not isinstance(sampler, DistributedSampler) or sampler.drop_last:
        return None
    dataset = sampler.dataset
    if not isinstance(dataset, Sized):
        return None
    size, processes = len(dataset), sampler.num_replicas
    if size % processes == 0:
        return None
    repeated = sampler.total_size - size
    return (
        f"{stage} dataloader {dataloader_idx}: its {size} samples do not split evenly across {processes}"
        f" processes; DistributedSampler repeats {repeated} of them, and the {stage} metrics count those"
        f" twice. Use a dataset size divisible by {processes}, or evaluate on one process for exact values."
    )


class PaddingWarnings:
    """Says each padding warning once per stage and dataloader, however many runs come after.

    Examples:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> data = TensorDataset(torch.zeros(301, 2))
        >>> padded = DataLoader(data, sampler=DistributedSampler(data, num_replicas=2, rank=0))
        >>> once = PaddingWarnings()
        >>> len(once.new_warnings("test", [padded])), len(once.new_warnings("test", [padded]))
        (1, 0)
    """

    def __init__(self) -> None:
        self._said: set[tuple[str, int]] = set()

    def new_warnings(self, stage: str, dataloaders: object) -> list[str]:
        """The warnings for ``stage``'s dataloaders (one, or a list or tuple of them) that were not said before."""
        messages = []
        loaders = dataloaders if isinstance(dataloaders, (list, tuple)) else [dataloaders]
        for dataloader_idx, dataloader in enumerate(loaders):
            message = padding_warning(dataloader, stage, dataloader_idx)
            if message is not None and (stage, dataloader_idx) not in self._said:
                self._said.add((stage, dataloader_idx))
                messages.append(message)
        return messages
