"""Count likelihoods for raw UMI counts, as :class:`torch.distributions.Distribution` objects.

Every log-likelihood is exact and computed in log space (``lgamma``, ``softplus``,
``logaddexp``, ``log_softmax``), so it stays finite and accurate for rates down to
:math:`10^{-8}` and below, large counts and extreme zero-inflation. Each distribution has
``log_prob``, ``mean``, ``variance``, ``sample``, a ``scale`` attribute and
``get_normalized(key)`` (``"mu"`` or ``"scale"``) as scvi-tools' ``RNASeqMixin`` expects.
``log_prob`` takes the counts as a dense tensor or as a torch sparse CSR ``(cells, genes)``
matrix; the negative binomial then reads only the non-zero counts, the others densify it.
"""

from ._component_mixture import ComponentMixture
from ._constrained_poisson import ConstrainedPoisson
from ._negative_binomial import NegativeBinomial, summed_log_prob
from ._piecewise_categorical import PiecewiseCategorical
from ._poisson import Poisson
from ._zero_inflated_negative_binomial import ZeroInflatedNegativeBinomial
from ._zero_inflated_poisson import ZeroInflatedPoisson

__all__ = [
    "ComponentMixture",
    "ConstrainedPoisson",
    "NegativeBinomial",
    "PiecewiseCategorical",
    "Poisson",
    "ZeroInflatedNegativeBinomial",
    "ZeroInflatedPoisson",
    "summed_log_prob",
]
