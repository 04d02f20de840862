"""Where scvae's results land in an AnnData."""

#: Default ``key_added``: results go to ``obsm["X_scvae"]``, ``obs["scvae_cluster"]``, ...
DEFAULT_KEY = "scvae"
#: ``adata.obsm`` key of the posterior mean of the latent variable z.
LATENT_KEY = f"X_{DEFAULT_KEY}"
#: ``adata.obs`` key of the GMVAE cluster assignment (argmax of q(y|x)).
CLUSTER_KEY = f"{DEFAULT_KEY}_cluster"
#: ``adata.obsm`` key of the GMVAE cluster probabilities q(y|x) (cells x K).
CLUSTER_PROBABILITIES_KEY = f"{CLUSTER_KEY}_probabilities"
#: ``adata.obs`` key of the GMVAE cluster confidence (max of q(y|x)).
CLUSTER_CONFIDENCE_KEY = f"{CLUSTER_KEY}_confidence"


def check_key_added(key_added: str) -> None:
    """Refuse a ``key_added`` that is not a non-empty string (``None`` would write
    ``obsm["X_None"]``), or that holds a ``/`` (an h5ad file writes it as a group path, and
    reading the file back fails)."""
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(
            f"key_added must be a non-empty string such as {DEFAULT_KEY!r} (the prefix of the "
            f"result keys), got {key_added!r}."
        )
    if "/" in key_added:
        raise ValueError(
            f"key_added={key_added!r} holds a '/', which h5ad files read as a path: the "
            "AnnData could be written but not read back. Use another character, such as '_'."
        )


def result_keys(key_added: str = DEFAULT_KEY) -> dict[str, str]:
    """Where the results of a model go for ``key_added``: ``latent`` (``obsm``), ``cluster``
    and ``confidence`` (``obs``), ``probabilities`` (``obsm``)."""
    check_key_added(key_added)
    return {
        "latent": f"X_{key_added}",
        "cluster": f"{key_added}_cluster",
        "probabilities": f"{key_added}_cluster_probabilities",
        "confidence": f"{key_added}_cluster_confidence",
    }


def drop_cluster_results(adata, key_added: str = DEFAULT_KEY) -> None:
    """Remove the cluster results under ``key_added`` (assignments, confidences,
    probabilities, dendrogram, and the colours scanpy's plots stored for the clusters) from
    ``adata``: a model without clusters writing its latent space there must not leave an
    earlier model's clusters to be read as its own."""
    keys = result_keys(key_added)
    adata.obs.drop(columns=[keys["cluster"], keys["confidence"]], errors="ignore", inplace=True)
    adata.obsm.pop(keys["probabilities"], None)
    for entry in (f"dendrogram_{keys['cluster']}", f"{keys['cluster']}_colors"):
        adata.uns.pop(entry, None)
