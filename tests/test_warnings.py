"""scvae's warnings name the line of the user's code that led to them."""

import warnings

import numpy as np
import pytest
from anndata import AnnData

import scvae
from scvae._warnings import warn


def test_a_warning_names_the_line_that_called_warn_from_outside_scvae():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("here", RuntimeWarning)
    line = test_a_warning_names_the_line_that_called_warn_from_outside_scvae.__code__
    assert caught[0].category is RuntimeWarning
    assert (caught[0].filename, caught[0].lineno) == (__file__, line.co_firstlineno + 3)


def test_a_warning_deep_inside_scvae_names_the_users_line():
    adata = AnnData(np.ones((4, 3), dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own warning
        adata.var_names = ["a", "a", "b"]
    with pytest.warns(UserWarning, match="names repeat") as said:
        scvae.setup_anndata(adata)  # three calls down in scvae
    assert [w.filename for w in said if "names repeat" in str(w.message)] == [__file__]


@pytest.mark.parametrize("ignore_scvi", [False, True])
def test_scvi_tools_warnings_keep_their_module_for_filters(ignore_scvi):
    adata = scvae.datasets.synthetic_counts(n_cells=150, n_genes=40, n_clusters=3, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_hidden=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if ignore_scvi:
            warnings.filterwarnings("ignore", module="scvi")
        # 135 training cells in minibatches of 133: scvi-tools warns of a last one of 2.
        model.train(max_epochs=1, batch_size=133, train_size=0.9, enable_progress_bar=False)
    said = [w for w in caught if "Last batch will have a small size" in str(w.message)]
    assert len(said) == (0 if ignore_scvi else 1)
