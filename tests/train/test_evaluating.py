"""Inference inside training leaves the module in the mode it found it in."""

import pytest
from torch import nn

from scvae.train._evaluating import evaluating


@pytest.mark.parametrize("training", [True, False])
def test_the_mode_is_restored_even_when_the_block_fails(training):
    module = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train(training)
    with evaluating(module) as inside:
        assert inside is module and not module.training
    assert module.training is training
    with pytest.raises(RuntimeError, match="a failed pass"), evaluating(module):
        raise RuntimeError("a failed pass")
    assert module.training is training and module[1].training is training
