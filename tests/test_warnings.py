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
