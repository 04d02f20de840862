"""The cluster colours written for scanpy."""

import re

import matplotlib
from cycler import cycler

from scvae.model._annotation import cluster_palette


def test_colours_are_hex_strings_whatever_the_style_gives():
    """scanpy reads RGB tuples in ``uns[..._colors]`` as one numeric colour per cluster (and
    warns for each); it writes hex strings itself."""
    rgb = [(0.2, 0.4, 0.6), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.5)]
    with matplotlib.rc_context({"axes.prop_cycle": cycler(color=rgb)}):
        colours = cluster_palette(3)
        assert colours == ["#336699", "#ff0000", "#0000ff80"]
        assert all(re.fullmatch("#[0-9a-f]{6}", colour) for colour in cluster_palette(25))
    assert all(re.fullmatch("#[0-9a-f]{6}", colour) for colour in cluster_palette(200))
