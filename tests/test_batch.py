"""What a step hands the module: sample counts, loss parts, detached inputs, a model's outputs."""

from __future__ import annotations

import pytest
import torch

from lightning_metrics_base.batch import check_model_outputs, detach, loss_parts, samples_in


class TestBatchHelpers:
    def test_samples_in(self) -> None:
        assert samples_in(torch.zeros(())) == 1
        assert samples_in((torch.zeros(6), torch.zeros(6, 2))) == 6
        with pytest.raises(TypeError, match=r"Mine.count_samples cannot count the samples of a str target"):
            samples_in("x", "Mine")

    def test_loss_parts(self) -> None:
        loss = torch.tensor(1.0)
        assert loss_parts(loss) == {"loss": loss}
        with pytest.raises(ValueError, match=r"without 'loss' \(keys: \['a', 'b'\]\)"):
            loss_parts({"b": loss, "a": loss})

    def test_detach_reaches_inside_containers(self) -> None:
        x = torch.ones(2, requires_grad=True) * 2
        detached = detach({"a": [x, (x,)], "b": x})
        assert not detached["a"][0].requires_grad and not detached["a"][1][0].requires_grad
        assert not detached["b"].requires_grad and isinstance(detached["a"][1], tuple)

    def test_model_outputs(self) -> None:
        check_model_outputs({"a": 1, "b": 2}, {"a": 1, "b": 2}, ("a", "b"))
        with pytest.raises(ValueError, match=r"the target is a Tensor, but `outputs=\('a',\)` needs a dict"):
            check_model_outputs({"a": 1}, torch.zeros(1), ("a",))
