"""``likelihood_parameters``: the named parameters give back each distribution's log-pmf."""

import numpy as np
import pytest
import torch
from scipy import stats

from scvae.distributions import (
    ComponentMixture,
    NegativeBinomial,
    PiecewiseCategorical,
    Poisson,
    ZeroInflatedNegativeBinomial,
    ZeroInflatedPoisson,
)

CELLS, GENES = 4, 5
COUNTS = torch.tensor(np.random.default_rng(0).poisson(2.0, (CELLS, GENES)), dtype=torch.float64)


def _log_mu():
    return torch.randn(CELLS, GENES, dtype=torch.float64)


def _log_theta():
    return torch.randn(GENES, dtype=torch.float64)


def _zi_logits():
    return torch.randn(CELLS, GENES, dtype=torch.float64)


def _nb_logpmf(x, mean, dispersions):
    return stats.nbinom.logpmf(x, dispersions, dispersions / (dispersions + mean))


def _zero_inflated(logpmf, x, dropout):
    return np.log(dropout * (x == 0) + (1 - dropout) * np.exp(logpmf))


@pytest.mark.parametrize(
    ("build", "reference"),
    [
        (lambda: Poisson(_log_mu()), lambda x, p: stats.poisson.logpmf(x, p["mean"])),
        (
            lambda: NegativeBinomial(_log_mu(), _log_theta()),
            lambda x, p: _nb_logpmf(x, p["mean"], p["dispersions"]),
        ),
        (
            lambda: ZeroInflatedPoisson(_log_mu(), _zi_logits()),
            lambda x, p: _zero_inflated(stats.poisson.logpmf(x, p["mean"]), x, p["dropout"]),
        ),
        (
            lambda: ZeroInflatedNegativeBinomial(_log_mu(), _log_theta(), _zi_logits()),
            lambda x, p: _zero_inflated(
                _nb_logpmf(x, p["mean"], p["dispersions"]), x, p["dropout"]
            ),
        ),
    ],
    ids=["poisson", "nb", "zip", "zinb"],
)
def test_the_named_parameters_give_back_the_log_pmf(build, reference):
    distribution = build()
    parameters = {k: v.numpy() for k, v in distribution.likelihood_parameters().items()}
    assert all(value.shape == (CELLS, GENES) for value in parameters.values())
    x = COUNTS.numpy()
    np.testing.assert_allclose(
        distribution.log_prob(COUNTS).numpy(), reference(x, parameters), rtol=1e-10
    )


def test_piecewise_class_probabilities_are_the_head_of_the_pmf_and_sum_to_one():
    cutoff = 3
    logits = torch.randn(CELLS, GENES, cutoff + 1, dtype=torch.float64)
    distribution = PiecewiseCategorical(NegativeBinomial(_log_mu(), _log_theta()), logits)
    parameters = distribution.likelihood_parameters()
    probabilities = parameters["class_probabilities"]
    assert probabilities.shape == (cutoff + 1, CELLS, GENES)
    torch.testing.assert_close(probabilities.sum(0), torch.ones(CELLS, GENES, dtype=torch.float64))
    for count in range(cutoff):
        value = torch.full((CELLS, GENES), float(count), dtype=torch.float64)
        torch.testing.assert_close(distribution.log_prob(value).exp(), probabilities[count])
    assert set(parameters) == {"mean", "class_probabilities", "tail_mean", "tail_dispersions"}
    torch.testing.assert_close(parameters["mean"], distribution.mean)


def test_a_mixture_names_its_weights_and_its_components_parameters():
    n_components = 3
    components = NegativeBinomial(
        torch.randn(n_components, CELLS, GENES, dtype=torch.float64), _log_theta()
    )
    log_weights = torch.log_softmax(torch.randn(CELLS, n_components, dtype=torch.float64), -1)
    parameters = ComponentMixture(components, log_weights).likelihood_parameters()
    assert parameters["component_mean"].shape == (n_components, CELLS, GENES)
    assert parameters["component_dispersions"].shape == (n_components, CELLS, GENES)
    torch.testing.assert_close(parameters["component_weights"], log_weights.exp())
    weighted = (log_weights.exp().T[..., None] * parameters["component_mean"]).sum(0)
    torch.testing.assert_close(parameters["mean"], weighted)


def test_a_mixture_of_zero_inflated_components_normalises_like_one_of_them():
    """``get_normalized("mu")`` leaves the extra zeros out, for a mixture as for one
    distribution (scvi-tools' normalised expression reads it)."""
    component = ZeroInflatedNegativeBinomial(
        torch.zeros(2, CELLS, GENES), torch.zeros(GENES), torch.full((2, CELLS, GENES), 2.0)
    )
    mixture = ComponentMixture(component, torch.log(torch.full((CELLS, 2), 0.5)))
    torch.testing.assert_close(mixture.get_normalized("mu"), torch.ones(CELLS, GENES))


def test_a_mixture_variance_survives_float32_at_large_counts():
    rates = torch.full((2, CELLS, GENES), 3e7)
    mixture = ComponentMixture(Poisson(rates.log()), torch.log(torch.full((CELLS, 2), 0.5)))
    torch.testing.assert_close(mixture.variance, torch.full((CELLS, GENES), 3e7))
