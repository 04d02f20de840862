"""Integer arguments: whole numbers of any numeric type, never booleans, strings or NaN."""

import math

import numpy as np
import pytest

import scvae
from scvae._arguments import integer_at_least, whole_number


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3),
        (np.int64(3), 3),
        (3.0, 3),
        (np.float32(3), 3),
        (1, 1),
        (0, None),
        (2.5, None),
        (True, None),
        ("3", None),
        (None, None),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_whole_number(value, expected):
    assert whole_number(value, 1) == expected


def test_integer_at_least_takes_integers_only():
    assert integer_at_least(3, 1) and integer_at_least(np.int32(1), 1)
    assert not any(integer_at_least(v, 1) for v in (0, 3.0, True, "3", None))


@pytest.mark.parametrize("bad", ["5", True, 2.5, math.nan])
def test_integer_options_name_the_bad_value(adata, bad):
    """True was taken for 1 and NaN failed inside int(); each is now refused by name."""
    scvae.setup_anndata(adata)
    with pytest.raises(ValueError, match="n_latent must be a positive integer"):
        scvae.VAE(adata, n_latent=bad)
