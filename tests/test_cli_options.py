"""The scvae command line's options (scvae/_cli_options.py): help texts, --version, and
the help's defaults, which must be the library's."""

import inspect
import subprocess
import sys

import pytest

import scvae
from scvae._cli_options import BATCH_NORM_PLACES as CLI_BATCH_NORM_PLACES
from scvae._cli_options import GMVAE_DEFAULT_CLUSTERS, LIKELIHOOD_NAMES
from scvae.cli import main
from scvae.distributions import LIKELIHOODS
from scvae.model import SEPARABILITY_THRESHOLD
from scvae.module._networks import BATCH_NORM_PLACES
from scvae.tl._demo import DEMO_N_CLUSTERS, DEMO_N_GENES


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["demo"]])
def test_help_exits_zero(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "usage: scvae" in capsys.readouterr().out


def test_demo_help_shows_percentages(capsys):
    assert main(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "on 90% of the 2730 cells" in out and "the other 10%;" in out and "%%" not in out


def test_version_names_scvae_torch_and_the_device(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"scvae-torch {scvae.__version__}\n") and "torch " in out
    assert "GPU" in out


def test_help_imports_neither_torch_nor_scvi_tools():
    code = (
        "import sys; from scvae.cli import main; main(['train', '--help']); "
        "assert not {'torch', 'scvi'} & set(sys.modules), sorted(sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--n-clusters" in result.stdout


def test_the_help_texts_defaults_are_the_librarys():
    assert inspect.signature(scvae.GMVAE).parameters["n_clusters"].default == (
        GMVAE_DEFAULT_CLUSTERS
    )
    assert LIKELIHOOD_NAMES == tuple(LIKELIHOODS)
    assert set(CLI_BATCH_NORM_PLACES) == set(BATCH_NORM_PLACES)
    assert inspect.signature(scvae.GMVAE).parameters["use_batch_norm"].default == "encoder"


@pytest.mark.parametrize(
    ("command", "stated"),
    [
        ("train", f"(default: {SEPARABILITY_THRESHOLD}"),
        ("demo", f"K is by default the {DEMO_N_CLUSTERS} "),
        ("demo", f"model choose (default: {DEMO_N_CLUSTERS})"),
        ("demo", f"0 for all (default: {DEMO_N_GENES})"),
        (
            "evaluate",
            "importance samples per cell (default: {})".format(
                inspect.signature(scvae.tl.evaluate_model).parameters["n_mc_samples"].default
            ),
        ),
    ],
)
def test_the_help_states_the_librarys_defaults(command, stated, capsys):
    """The help is written without torch, so its numbers are literals: each must be the
    library's."""
    assert main([command, "--help"]) == 0
    assert stated in " ".join(capsys.readouterr().out.split())
