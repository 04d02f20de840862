"""Every count likelihood takes its counts as a torch sparse CSR matrix as well as dense."""

import pytest
import torch

from scvae.distributions import ComponentMixture
from scvae.module import CountDecoder


@pytest.mark.parametrize(
    ("likelihood", "piecewise_cutoff"),
    [
        ("poisson", None),
        ("nb", None),
        ("zip", None),
        ("zinb", None),
        ("constrained_poisson", None),
        ("nb", 2),
    ],
)
def test_sparse_and_dense_counts_give_the_same_log_likelihood(likelihood, piecewise_cutoff):
    torch.manual_seed(0)
    decoder = CountDecoder(4, [8], 12, likelihood=likelihood, piecewise_cutoff=piecewise_cutoff)
    counts = torch.poisson(torch.full((5, 12), 0.8))
    library = counts.sum(-1, keepdim=True)
    batch = torch.zeros(5, dtype=torch.long)
    px = decoder(torch.randn(5, 4), library, batch)
    torch.testing.assert_close(px.log_prob(counts.to_sparse_csr()), px.log_prob(counts))
    components = decoder(torch.randn(3, 5, 4), library, batch)
    mixture = ComponentMixture(components, torch.log_softmax(torch.randn(5, 3), -1))
    torch.testing.assert_close(mixture.log_prob(counts.to_sparse_csr()), mixture.log_prob(counts))
