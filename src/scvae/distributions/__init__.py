"""Count likelihoods for raw UMI counts, as :class:`torch.distributions.Distribution` objects.

Every log-likelihood is exact and computed in log space (``lgamma``, ``softplus``,
``logaddexp``, ``log_softmax``), so it stays finite for rates down to :math:`10^{-8}` and
below, large counts and extreme zero-inflation; its accuracy is that of the dtype (in
float32, the terms of a count of :math:`10^6` lose up to a few nats; in float64, none). Each
distribution is a :class:`CountDistribution`: ``log_prob`` (per gene), ``log_prob_sum`` (per
cell), ``mean``, ``variance``, ``sample``, ``scale`` and ``get_normalized(key)`` (``"mu"``
or ``"scale"``) as scvi-tools' ``RNASeqMixin`` expects. ``log_prob`` takes the counts as a
dense tensor or as a torch sparse CSR ``(cells, genes)`` matrix; the negative binomial then
reads only the non-zero counts, the others densify it. :data:`LIKELIHOODS` maps the names
models accept (``likelihood="nb"``) to these classes.

Names imported ``as`` themselves and not in ``__all__`` serve scvae's other packages.
"""

from ._base import CountDistribution
from ._component_mixture import ComponentMixture
from ._constrained_poisson import ConstrainedPoisson
from ._likelihoods import LIKELIHOODS, Likelihood, get_likelihood, register_likelihood
from ._negative_binomial import NegativeBinomial
from ._piecewise_categorical import PiecewiseCategorical
from ._poisson import Poisson
from ._utils import library_scaled as library_scaled
from ._zero_inflated_negative_binomial import ZeroInflatedNegativeBinomial
from ._zero_inflated_poisson import ZeroInflatedPoisson

__all__ = [
    "LIKELIHOODS",
    "ComponentMixture",
    "ConstrainedPoisson",
    "CountDistribution",
    "Likelihood",
    "NegativeBinomial",
    "PiecewiseCategorical",
    "Poisson",
    "ZeroInflatedNegativeBinomial",
    "ZeroInflatedPoisson",
    "get_likelihood",
    "register_likelihood",
]
