"""The likelihood table: every name builds its distribution, and a new row is all it takes."""

import numpy as np
import pytest
import torch
from torch import Tensor

import scvae
from scvae.distributions import (
    LIKELIHOODS,
    ComponentMixture,
    CountDistribution,
    NegativeBinomial,
    get_likelihood,
    register_likelihood,
)
from scvae.module import CountDecoder
from tests.helpers import QUIET


@pytest.mark.parametrize("name", list(LIKELIHOODS))
@pytest.mark.parametrize("dispersion", ["gene", "gene-batch", "gene-cell"])
def test_every_row_builds_its_distribution_and_sums_it_per_cell(name, dispersion):
    torch.manual_seed(0)
    decoder = CountDecoder(3, [8], 7, likelihood=name, dispersion=dispersion, n_batch=2)
    z, library = torch.randn(5, 3), torch.full((5, 1), 40.0)
    px = decoder(z, library, torch.tensor([0, 1, 0, 1, 1]))
    assert type(px) is LIKELIHOODS[name].distribution
    counts = torch.poisson(torch.full((5, 7), 2.0))
    torch.testing.assert_close(px.log_prob_sum(counts), px.log_prob(counts).sum(-1))
    torch.testing.assert_close(px.log_prob_sum(counts.to_sparse_csr()), px.log_prob(counts).sum(-1))
    np.testing.assert_allclose(px.get_normalized("scale").sum(-1).detach(), 1, rtol=1e-5)


CUTOFFS = [(name, None) for name in LIKELIHOODS] + [
    (name, 3) for name, row in LIKELIHOODS.items() if row.piecewise
]


@pytest.mark.parametrize(("name", "cutoff"), CUTOFFS)
@pytest.mark.parametrize("dispersion", ["gene", "gene-cell"])
def test_expand_adds_leading_axes_and_repeats_axes_of_size_one(name, cutoff, dispersion):
    torch.manual_seed(0)
    decoder = CountDecoder(
        3, [8], 7, likelihood=name, dispersion=dispersion, piecewise_cutoff=cutoff
    )
    decoder.eval()
    counts = torch.poisson(torch.full((5, 7), 2.0))
    with torch.no_grad():
        px = decoder(torch.randn(5, 3), torch.full((5, 1), 40.0), torch.zeros(5, dtype=torch.long))
        one_cell = decoder(torch.randn(1, 3), torch.full((1, 1), 40.0), torch.zeros(1).long())
    expanded = px.expand((2, 5, 7))
    assert type(expanded) is type(px) and expanded.batch_shape == (2, 5, 7)
    torch.testing.assert_close(expanded.log_prob(counts), px.log_prob(counts).expand(2, 5, 7))
    torch.testing.assert_close(expanded.log_prob_sum(counts), px.log_prob_sum(counts).expand(2, 5))
    torch.testing.assert_close(expanded.mean, px.mean.expand(2, 5, 7))
    torch.testing.assert_close(expanded.variance, px.variance.expand(2, 5, 7))
    assert expanded.sample().shape == (2, 5, 7)
    if "log_theta" in vars(px) and dispersion == "gene":  # broadcasts: not expanded
        assert expanded.log_theta.shape == px.log_theta.shape
    repeated = one_cell.expand((5, 7))
    torch.testing.assert_close(repeated.log_prob(counts), one_cell.log_prob(counts))
    with pytest.raises(ValueError, match=r"batch shape \(5, 7\) to \(4, 7\)"):
        px.expand((4, 7))


def test_expand_repeats_parameters_that_broadcast_against_each_other():
    distribution = NegativeBinomial(torch.randn(5, 1), torch.randn(1, 7))
    expanded = distribution.expand((2, 5, 7))
    counts = torch.poisson(torch.full((5, 7), 2.0))
    reference = distribution.log_prob(counts).expand(2, 5, 7)
    torch.testing.assert_close(expanded.log_prob(counts), reference)


class TemperedNegativeBinomial(NegativeBinomial):
    """A user's likelihood with a constructor argument that is not a parameter."""

    def __init__(self, log_mu, log_theta, temperature=1.0, log_scale=None, validate_args=False):
        super().__init__(log_mu, log_theta, log_scale, validate_args)
        self.temperature = temperature


def test_a_likelihood_with_other_constructor_arguments_is_told_to_override_expand():
    distribution = TemperedNegativeBinomial(torch.randn(5, 7), torch.randn(7), temperature=4.0)
    with pytest.raises(NotImplementedError, match="Override expand"):
        distribution.expand((2, 5, 7))


def test_a_mixture_expands_around_its_component_axis():
    torch.manual_seed(0)
    components = NegativeBinomial(torch.randn(2, 5, 7), torch.randn(7))
    mixture = ComponentMixture(components, torch.log_softmax(torch.randn(5, 2), -1))
    counts = torch.poisson(torch.full((5, 7), 2.0))
    expanded = mixture.expand((3, 5, 7))
    assert expanded.batch_shape == (3, 5, 7)
    torch.testing.assert_close(expanded.log_prob(counts), mixture.log_prob(counts).expand(3, 5, 7))
    torch.testing.assert_close(expanded.mean, mixture.mean.expand(3, 5, 7))
    torch.testing.assert_close(expanded.variance, mixture.variance.expand(3, 5, 7))
    with pytest.raises(ValueError, match="must broadcast"):
        mixture.expand((7,))


@pytest.mark.parametrize("n_samples", [2, 3])  # 3: as many samples as components
def test_a_mixture_sums_counts_with_a_sample_axis_per_sample(n_samples):
    torch.manual_seed(0)
    components = NegativeBinomial(torch.randn(3, 5, 7), torch.randn(7))
    mixture = ComponentMixture(components, torch.log_softmax(torch.randn(5, 3), -1))
    counts = torch.poisson(torch.full((n_samples, 5, 7), 2.0))
    summed = mixture.log_prob_sum(counts)
    assert summed.shape == (n_samples, 5)
    torch.testing.assert_close(summed, torch.stack([mixture.log_prob_sum(c) for c in counts]))


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"likelihood='gamma' is not one of \('poisson', 'nb'"):
        get_likelihood("gamma")
    with pytest.raises(TypeError, match="CountDistribution"):
        register_likelihood("bad", torch.distributions.Poisson)
    with pytest.raises(ValueError, match="kinds"):
        register_likelihood("bad", NegativeBinomial, parameters={"log_theta": "per-cluster"})
    assert "bad" not in LIKELIHOODS


class Geometric(CountDistribution):
    """A toy likelihood: the geometric distribution with mean mu, p(x) = mu^x / (1 + mu)^(x+1)."""

    def __init__(self, log_mean: Tensor, log_scale: Tensor | None = None):
        self.log_mean, self.log_scale = log_mean, log_scale
        super().__init__(batch_shape=log_mean.shape, validate_args=False)

    @property
    def mean(self) -> Tensor:
        return self.log_mean.exp()

    @property
    def scale(self) -> Tensor:
        return torch.softmax(self.log_mean, -1)

    def log_prob(self, value: Tensor) -> Tensor:
        value = value.to_dense() if value.layout == torch.sparse_csr else value
        softplus = torch.nn.functional.softplus(self.log_mean)
        return value * self.log_mean - (value + 1) * softplus


@pytest.fixture
def geometric():
    row = register_likelihood("geometric", Geometric)
    yield row
    del LIKELIHOODS["geometric"]


def test_a_toy_likelihood_added_to_the_table_trains_a_vae(adata, geometric):
    scvae.setup_anndata(adata, layer="counts")
    model = scvae.VAE(adata, likelihood="geometric", n_latent=2, n_hidden=16)
    model.train(max_epochs=3, **QUIET)
    assert isinstance(
        model.module.decoder(torch.zeros(1, 2), torch.ones(1, 1), torch.zeros(1, dtype=torch.long)),
        Geometric,
    )
    elbos = model.history["elbo_train"]["elbo_train"].astype(float).to_numpy()
    assert np.isfinite(elbos).all() and elbos[-1] > elbos[0]  # it learns
    x = torch.as_tensor(adata.layers["counts"][:4].toarray())
    log_mean = torch.randn(4, adata.n_vars)
    expected = torch.distributions.Geometric(probs=1 / (1 + log_mean.exp())).log_prob(x)
    torch.testing.assert_close(Geometric(log_mean).log_prob(x), expected)
