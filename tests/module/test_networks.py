"""Hidden layer widths are resolved as users write them, covariates reach every layer, and
batch statistics stay out of the generative model unless asked for."""

import pytest
import torch

from scvae.module import MLP, ComponentGMVAEModule, GMVAEModule, VAEModule
from scvae.module._networks import batch_norm_places, hidden_widths


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


@pytest.mark.parametrize(
    ("use_batch_norm", "places"),
    [
        ("encoder", (True, False)),
        ("decoder", (False, True)),
        ("both", (True, True)),
        ("none", (False, False)),
        (True, (True, True)),  # as saved by models before the places existed
        (False, (False, False)),
    ],
)
def test_batch_norm_places(use_batch_norm, places):
    assert batch_norm_places(use_batch_norm) == places


def test_an_unknown_batch_norm_place_is_named():
    with pytest.raises(ValueError, match="use_batch_norm='decoders' is not one of"):
        batch_norm_places("decoders")


def _has_batch_norm(network: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.BatchNorm1d) for m in network.modules())


@pytest.mark.parametrize("module_cls", [VAEModule, GMVAEModule, ComponentGMVAEModule])
def test_by_default_a_cells_likelihood_does_not_depend_on_its_minibatch(module_cls):
    """The decoder is p(x | z): in training mode, a cell's decoded distribution is the same
    alone or among other cells; the encoders keep their batch normalisation."""
    torch.manual_seed(0)
    module = module_cls(n_input=20, n_latent=3, n_hidden=(8,)).train()
    encoders = [m for name, m in module.named_children() if "encoder" in name]
    assert encoders and all(_has_batch_norm(encoder) for encoder in encoders)
    assert not _has_batch_norm(module.decoder)
    z, library = torch.randn(6, 3), torch.full((6, 1), 100.0)
    batch = torch.zeros(6, dtype=torch.long)
    together = module.decoder(z, library, batch).log_prob_sum(torch.ones(6, 20))
    first_two = module.decoder(z[:2], library[:2], batch[:2]).log_prob_sum(torch.ones(2, 20))
    torch.testing.assert_close(first_two, together[:2])


def test_both_networks_batch_normalise_when_asked():
    module = VAEModule(n_input=20, n_latent=3, n_hidden=(8,), use_batch_norm="both")
    assert _has_batch_norm(module.encoder) and _has_batch_norm(module.decoder)
