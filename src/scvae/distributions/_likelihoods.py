"""The count likelihoods by name: one row per likelihood, as in torch's ``register_kl`` table.

A row says which distribution class a name selects, which parameters the decoder must produce
for it besides the mean, and whether its means are always scaled by the library size. The
decoder (:class:`~scvae.module.CountDecoder`) builds every likelihood from its row alone, so a
new likelihood is one distribution class and one :func:`register_likelihood` call.
"""

from dataclasses import dataclass, field

from ._base import CountDistribution
from ._constrained_poisson import ConstrainedPoisson
from ._negative_binomial import NegativeBinomial
from ._poisson import Poisson
from ._zero_inflated_negative_binomial import ZeroInflatedNegativeBinomial
from ._zero_inflated_poisson import ZeroInflatedPoisson

#: Kinds of decoder output a likelihood parameter can be: ``"dispersion"`` follows the
#: models' ``dispersion`` option (one value per gene, per gene and batch, or per cell and
#: gene), ``"cell"`` is one value per cell and gene (a linear map of the decoder's last hidden
#: layer), ``"gene"`` one free value per gene.
PARAMETER_KINDS: tuple[str, ...] = ("dispersion", "cell", "gene")


@dataclass(frozen=True)
class Likelihood:
    """One row of the likelihood table.

    Parameters
    ----------
    name
        The name models take as ``likelihood=``.
    distribution
        A :class:`~scvae.distributions.CountDistribution` subclass, called by the decoder as
        ``distribution(log_mean, log_scale=log_scale, **parameters)``.
    parameters
        The distribution's parameters besides the mean, as keyword name -> kind
        (:data:`PARAMETER_KINDS`), in the order the decoder creates them.
    library_scaled
        ``True``: the means are always the cell's library size times a softmax over genes
        (part of the likelihood's definition); ``None``: the models' ``scale_by_library``
        option decides.
    piecewise
        scVAE's piecewise categorical variant (``piecewise_cutoff=``) can wrap it.
    """

    name: str
    distribution: type[CountDistribution]
    parameters: dict[str, str] = field(default_factory=dict)
    library_scaled: bool | None = None
    piecewise: bool = False


#: Every known likelihood by name; add one with :func:`register_likelihood`.
LIKELIHOODS: dict[str, Likelihood] = {}


def register_likelihood(
    name: str,
    distribution: type[CountDistribution],
    *,
    parameters: dict[str, str] | None = None,
    library_scaled: bool | None = None,
    piecewise: bool = False,
) -> Likelihood:
    """Add a likelihood to :data:`LIKELIHOODS`, so that ``VAE(adata, likelihood=name)`` works.

    Parameters
    ----------
    name
        Name of the likelihood; an existing name is replaced.
    distribution
        Its :class:`~scvae.distributions.CountDistribution` subclass, constructed as
        ``distribution(log_mean, log_scale=log_scale, **parameters)``.
    parameters
        Parameters besides the mean, keyword name -> kind (one of :data:`PARAMETER_KINDS`).
    library_scaled
        ``True`` if the means are by definition scaled by the library size.
    piecewise
        Whether ``piecewise_cutoff=`` may wrap it.

    Returns
    -------
    The table row.

    Examples
    --------
    >>> register_likelihood("nb", NegativeBinomial, parameters={"log_theta": "dispersion"})
    """
    parameters = dict(parameters or {})
    unknown = {kind for kind in parameters.values() if kind not in PARAMETER_KINDS}
    if unknown:
        raise ValueError(f"Parameter kinds {sorted(unknown)} are not among {PARAMETER_KINDS}.")
    if not (isinstance(distribution, type) and issubclass(distribution, CountDistribution)):
        raise TypeError(f"{distribution!r} is not a scvae.distributions.CountDistribution class.")
    row = Likelihood(name, distribution, parameters, library_scaled, piecewise)
    LIKELIHOODS[name] = row
    return row


def get_likelihood(name: str) -> Likelihood:
    """The row of ``name``, or a :class:`ValueError` that lists the known likelihoods."""
    if name not in LIKELIHOODS:
        raise ValueError(f"likelihood={name!r} is not one of {tuple(LIKELIHOODS)}.")
    return LIKELIHOODS[name]


register_likelihood("poisson", Poisson, piecewise=True)
register_likelihood("nb", NegativeBinomial, parameters={"log_theta": "dispersion"}, piecewise=True)
register_likelihood("zip", ZeroInflatedPoisson, parameters={"zi_logits": "cell"})
register_likelihood(
    "zinb",
    ZeroInflatedNegativeBinomial,
    parameters={"log_theta": "dispersion", "zi_logits": "cell"},
)
register_likelihood("constrained_poisson", ConstrainedPoisson, library_scaled=True, piecewise=True)
