"""Names shared across scvae: where results land in AnnData and the supported options."""

from typing import Literal

#: ``adata.obsm`` key of the posterior mean of the latent variable z.
LATENT_KEY = "X_scvae"
#: ``adata.obs`` key of the GMVAE cluster assignment (argmax of q(y|x)).
CLUSTER_KEY = "scvae_cluster"
#: ``adata.obsm`` key of the GMVAE cluster probabilities q(y|x) (cells x K).
CLUSTER_PROBABILITIES_KEY = "scvae_cluster_probabilities"
#: ``adata.obs`` key of the GMVAE cluster confidence (max of q(y|x)).
CLUSTER_CONFIDENCE_KEY = "scvae_cluster_confidence"

Likelihood = Literal["poisson", "nb", "zip", "zinb", "constrained_poisson"]
LIKELIHOODS: tuple[str, ...] = ("poisson", "nb", "zip", "zinb", "constrained_poisson")
#: Likelihoods that the piecewise-categorical variant can wrap.
PIECEWISE_LIKELIHOODS: tuple[str, ...] = ("poisson", "nb", "constrained_poisson")
#: Likelihoods with an inverse-dispersion parameter.
DISPERSED_LIKELIHOODS: tuple[str, ...] = ("nb", "zinb")

Dispersion = Literal["gene", "gene-batch", "gene-cell"]
DISPERSIONS: tuple[str, ...] = ("gene", "gene-batch", "gene-cell")
