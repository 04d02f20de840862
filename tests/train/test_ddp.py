"""Distributed data-parallel training through scvi-tools' ``train(strategy="ddp")``."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import scvi
    import torch.distributed as dist
    import scvae
    from scvae.datasets import synthetic_counts

    if __name__ == "__main__":
        scvi.settings.seed = 0
        adata = synthetic_counts(n_cells=400, n_genes=30, n_clusters=3, seed=0)
        scvae.setup_anndata(adata)
        model = scvae.GMVAE(adata, n_clusters=3, n_hidden=16, n_latent=3)
        model.train(
            max_epochs=3,
            n_restarts=int(sys.argv[1]),
            accelerator="cpu",
            devices=2,
            strategy="ddp",
            enable_progress_bar=False,
        )
        checksum = sum(float(p.sum()) for p in model.module.parameters())
        elbos = model.restart_elbos_
        elbos = "none" if elbos is None else ",".join(f"{elbo:.6f}" for elbo in elbos)
        # One file per rank: lines printed by two processes to one pipe can interleave.
        with open(f"result_{dist.get_rank()}.txt", "w") as out:
            out.write(f"{dist.get_rank()} {dist.get_world_size()} {checksum:.6f} "
                      f"{'kl_y_train' in model.history} {elbos}")
    """
)

pytestmark = pytest.mark.slow  # two training processes per test


def run_on_two_processes(tmp_path, n_restarts: int) -> list[tuple[str, ...]]:
    """Run the script on 2 gloo processes; one (rank, world, checksum, kl_y, elbos) per rank."""
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(n_restarts)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [tuple(path.read_text().split()) for path in sorted(tmp_path.glob("result_*.txt"))]
    assert [rank for rank, *_ in lines] == ["0", "1"]
    assert all(world == "2" for _, world, *_ in lines)
    return lines


def test_two_cpu_processes_train_one_model_in_sync(tmp_path):
    lines = run_on_two_processes(tmp_path, n_restarts=1)
    assert dict((rank, kl_y) for rank, _, _, kl_y, _ in lines)["0"] == "True"  # history: rank 0
    checksums = [float(checksum) for _, _, checksum, _, _ in lines]
    assert np.isfinite(checksums).all()
    assert checksums[0] == checksums[1]  # gradients were all-reduced: identical weights


def test_restarts_keep_the_same_fit_on_every_process(tmp_path):
    lines = run_on_two_processes(tmp_path, n_restarts=2)
    elbos = [[float(elbo) for elbo in line[4].split(",")] for line in lines]
    assert len(elbos[0]) == 2 and np.isfinite(elbos).all()
    assert elbos[0] == elbos[1]  # every rank scores the restarts alike ...
    checksums = [float(checksum) for _, _, checksum, _, _ in lines]
    assert checksums[0] == checksums[1]  # ... so every rank keeps the same fit
