"""Distributed data-parallel training through scvi-tools' ``train(strategy="ddp")``."""

import re
import subprocess
import sys
import textwrap

import numpy as np

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
            max_epochs=3, accelerator="cpu", devices=2, strategy="ddp", enable_progress_bar=False
        )
        checksum = sum(float(p.sum()) for p in model.module.parameters())
        print(f"RESULT rank={dist.get_rank()} world={dist.get_world_size()} "
              f"checksum={checksum:.6f} kl_y={'kl_y_train' in model.history}", flush=True)
    """
)


def test_two_cpu_processes_train_one_model_in_sync(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    lines = re.findall(r"RESULT rank=(\d) world=(\d) checksum=(\S+) kl_y=(\w+)", result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(rank for rank, *_ in lines) == ["0", "1"]
    assert all(world == "2" for _, world, _, _ in lines)
    assert dict((rank, kl_y) for rank, _, _, kl_y in lines)["0"] == "True"  # history: rank 0
    checksums = [float(checksum) for _, _, checksum, _ in lines]
    assert np.isfinite(checksums).all()
    assert checksums[0] == checksums[1]  # gradients were all-reduced: identical weights
