"""Hidden layer widths are resolved as users write them, and covariates reach every layer."""

import pytest
import torch

from scvae.module import MLP
from scvae.module._networks import hidden_widths


@pytest.mark.parametrize(
    ("n_hidden", "n_layers", "expected"),
    [(128, 1, [128]), (64, 3, [64, 64, 64]), ([1000, 500, 250, 100], 1, [1000, 500, 250, 100])],
)
def test_hidden_widths(n_hidden, n_layers, expected):
    assert hidden_widths(n_hidden, n_layers) == expected


def test_contradictory_widths_are_refused():
    with pytest.raises(ValueError, match="n_layers"):
        hidden_widths([10, 10], 3)
    with pytest.raises(ValueError, match="positive"):
        hidden_widths(0, 2)


def test_batch_changes_every_layer_and_leading_dimensions_broadcast():
    torch.manual_seed(0)
    mlp = MLP(5, [8, 4], n_categories=(3,), dropout_rate=0.0).eval()
    x = torch.randn(2, 6, 5)  # (components, cells, features)
    batch_a, batch_b = torch.zeros(6, dtype=torch.long), torch.full((6,), 2)
    out_a, out_b = mlp(x, (batch_a,)), mlp(x, (batch_b,))
    assert out_a.shape == (2, 6, 4)
    assert not torch.allclose(out_a, out_b)
