"""Paul et al. (2015) mouse myeloid progenitors, shipped with the package."""

from importlib.resources import as_file, files

import anndata as ad
import numpy as np
import scipy.sparse as sp
from anndata import AnnData

#: File name of the bundled data set inside ``scvae/datasets/data`` (see its PROVENANCE.md).
PAUL15_FILE = "paul15.h5ad"


def paul15() -> AnnData:
    """Raw UMI counts of 2,730 mouse myeloid progenitors with 19 published clusters.

    Paul et al., *Transcriptional heterogeneity and lineage commitment in myeloid progenitors*,
    Cell 163 (2015). The copy shipped with scvae comes from the ``eleozzr/desc`` repository
    (``desc/original/paul15_cluster.h5ad``, MIT licence); it is read from the installed package,
    without network access. See ``scvae/datasets/data/PROVENANCE.md``.

    Returns
    -------
    AnnData, 2730 cells x 3451 genes, with

    - ``X``: raw integer counts (CSR, float32);
    - ``var_names``: gene symbols (e.g. ``"Gata1"``, ``"Mpo"``, ``"Klf1"``);
    - ``obs["paul15_clusters"]`` and ``obs["label"]``: the 19 published clusters
      (``"1Ery"`` ... ``"19Lymph"``, categorical; the two columns are equal);
    - ``uns["iroot"]``: index of the root cell used in diffusion pseudotime examples;
      ``uns["source"]``: where the file came from.

    Examples
    --------
    >>> adata = scvae.datasets.paul15()
    >>> scvae.setup_anndata(adata, labels_key="label")
    >>> model = scvae.GMVAE(adata, n_clusters=19)
    """
    resource = files("scvae.datasets") / "data" / PAUL15_FILE
    with as_file(resource) as path:
        adata = ad.read_h5ad(path)
    # Stored compactly (uint8 counts, int16 gene indices): widen to the usual dtypes.
    counts = sp.csr_matrix(adata.X, dtype=np.float32)
    counts.indices = counts.indices.astype(np.int32)
    counts.indptr = counts.indptr.astype(np.int32)
    adata.X = counts
    # Stored as a one-element array; scanpy's dpt reads the root as an integer index.
    adata.uns["iroot"] = int(np.ravel(adata.uns["iroot"])[0])
    return adata
