"""Minibatches from the converted tensors equal the registered AnnData rows, in every storage."""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import scvi
import torch
from lightning.pytorch import Callback
from scvi import REGISTRY_KEYS

import scvae
from scvae._counts import dense_counts, is_sparse_csr
from scvae.data import (
    BlockShuffleSampler,
    TensorDataLoader,
    TensorDataSplitter,
    _count_rows,
    check_splitter_options,
    counts_are_sparse,
)
from scvae.data._count_rows import csr_rows
from tests.helpers import QUIET, mostly_zeros, requires_cuda


def _manager(adata):
    scvae.setup_anndata(adata, batch_key="batch")
    return scvae.VAE._get_most_recent_anndata_manager(adata, required=True)


def _batches(loader):
    return [
        (dense_counts(b[REGISTRY_KEYS.X_KEY]).numpy(), b[REGISTRY_KEYS.BATCH_KEY].numpy())
        for b in loader
    ]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("storage", ["dense", "csr", "csr-too-big-to-densify", "duplicates"])
def test_minibatches_equal_the_anndata_rows(adata, storage, sparse, monkeypatch):
    if storage == "dense":
        adata.X = adata.X.toarray()
    if storage == "csr-too-big-to-densify":  # dense minibatches are then sliced from CSR
        monkeypatch.setattr(_count_rows, "DENSE_LIMIT_BYTES", 0)
    if storage == "duplicates":  # each count stored as two entries that add up to it
        x = adata.X.tocsr()
        half = np.floor(x.data / 2)
        data = np.stack([half, x.data - half], axis=1).ravel()
        adata.X = sp.csr_matrix((data, np.repeat(x.indices, 2), 2 * x.indptr), shape=x.shape)
        assert adata.X.nnz == 2 * x.nnz
    manager = _manager(adata)
    indices = np.array([5, 3, 200, 17, 42, 0, 299])
    loader = TensorDataLoader(manager, indices=indices, batch_size=3, load_sparse_tensor=sparse)
    for minibatch in loader:
        counts = minibatch[REGISTRY_KEYS.X_KEY]
        assert is_sparse_csr(counts) == sparse
        # One stored entry per count: entrywise transforms (the encoder's log1p) are exact.
        torch.testing.assert_close(
            dense_counts(torch.log1p(counts)), torch.log1p(dense_counts(counts))
        )
    x, batch = (np.concatenate(parts) for parts in zip(*_batches(loader), strict=True))
    expected = adata.X[indices]
    np.testing.assert_array_equal(x, expected.toarray() if sp.issparse(expected) else expected)
    np.testing.assert_array_equal(batch.ravel(), adata.obs["_scvi_batch"].to_numpy()[indices])


def test_shuffled_epochs_cover_every_cell_once(adata):
    loader = TensorDataLoader(_manager(adata), batch_size=64, shuffle=True)
    torch.manual_seed(0)
    totals = np.concatenate([x.sum(1) for x, _ in _batches(loader)])
    np.testing.assert_allclose(np.sort(totals), np.sort(np.asarray(adata.X.sum(1)).ravel()))


def test_training_and_inference_from_a_backed_file(backed):
    backed, in_memory = backed
    model = scvae.VAE(backed, n_hidden=16)
    model.train(max_epochs=2, annotate=False, **QUIET)
    manager = scvae.VAE._get_most_recent_anndata_manager(backed)
    for sparse in (False, True):
        loader = TensorDataLoader(
            manager, indices=[7, 2, 9], batch_size=3, load_sparse_tensor=sparse
        )
        ((x, _),) = _batches(loader)
        np.testing.assert_array_equal(x, in_memory.X[[7, 2, 9]].toarray())
    assert model.get_latent_representation().shape == (in_memory.n_obs, 10)


def test_a_model_saved_with_a_backed_anndata_leaves_it_on_its_own_file(backed, tmp_path):
    backed, in_memory = backed
    filename = backed.filename
    model = scvae.VAE(backed, n_hidden=16)
    model.train(max_epochs=1, annotate=False, **QUIET)
    model.save(tmp_path / "model", save_anndata=True)
    assert backed.filename == filename  # anndata's write had pointed it at the saved copy
    backed.file.close()  # the file opened anew, as a later step of a session would
    assert model.get_latent_representation().shape == (in_memory.n_obs, 10)
    assert scvae.VAE.load(tmp_path / "model").adata.n_obs == in_memory.n_obs


def test_a_backed_csc_matrix_is_named_with_the_conversion_at_setup(adata, tmp_path):
    adata.X = sp.csc_matrix(adata.X)
    adata.write_h5ad(tmp_path / "csc.h5ad")
    backed = ad.read_h5ad(tmp_path / "csc.h5ad", backed="r")
    with pytest.warns(UserWarning, match=r"CSC matrix in a backed file.*\.tocsr\(\)"):
        scvae.setup_anndata(backed)


def test_dense_float16_counts_in_a_backed_file_train(adata, tmp_path):
    adata.X = adata.X.toarray().astype(np.float16)
    adata.write_h5ad(tmp_path / "half.h5ad")
    backed = ad.read_h5ad(tmp_path / "half.h5ad", backed="r")
    scvae.setup_anndata(backed)
    model = scvae.VAE(backed, n_hidden=16)
    model.train(max_epochs=1, annotate=False, **QUIET)
    assert np.isfinite(model.get_latent_representation()).all()


class CountingReads:
    """A backed matrix that counts the reads made from it."""

    def __init__(self, matrix):
        self.matrix, self.shape, self.n_reads = matrix, matrix.shape, 0

    def __getitem__(self, rows):
        self.n_reads += 1
        return self.matrix[rows]


@pytest.mark.parametrize("shuffle", [False, True])
def test_backed_minibatches_are_the_sampled_rows_in_any_order(backed, shuffle):
    backed, in_memory = backed
    manager = scvae.VAE._get_most_recent_anndata_manager(backed)
    indices = np.random.default_rng(0).permutation(300)[:250]
    loader = TensorDataLoader(
        manager, indices=indices, batch_size=7, shuffle=shuffle, block_size=16, blocks_per_buffer=3
    )
    served = []
    for batch in loader.sampler:
        x = loader.dataset[batch][REGISTRY_KEYS.X_KEY].numpy()
        np.testing.assert_array_equal(x, in_memory.X[indices[batch]].toarray())
        served.extend(batch)
    assert sorted(served) == list(range(250))
    if not shuffle:  # inference keeps the given order
        assert served == list(range(250))


def test_an_epoch_from_a_backed_file_reads_each_block_in_one_slice(backed):
    backed, _ = backed
    manager = scvae.VAE._get_most_recent_anndata_manager(backed)
    loader = TensorDataLoader(
        manager, batch_size=15, shuffle=True, block_size=30, blocks_per_buffer=2
    )
    reads = CountingReads(loader.dataset.counts.matrix)
    loader.dataset.counts.matrix = reads
    n_batches = sum(1 for _ in loader)
    assert n_batches == 20
    # 300 cells in 10 blocks (neighbouring blocks in one buffer merge); row by row: 300 reads
    assert reads.n_reads <= 10


def test_a_gmvae_places_its_components_from_a_backed_file(backed):
    backed, _ = backed
    scvi.settings.seed = 0
    model = scvae.GMVAE(backed, n_clusters=3, n_hidden=16)
    model.train(max_epochs=2, component_init_epochs=1, annotate=False, **QUIET)
    assert model.predict().shape == (300,)
    assert np.isfinite(model.module.prior.means.detach().cpu().numpy()).all()


def test_block_shuffled_minibatches_are_full_and_come_from_the_loaded_buffer():
    rows = np.random.default_rng(1).choice(1000, 700, replace=False)
    loaded = []
    sampler = BlockShuffleSampler(
        rows, batch_size=32, load=loaded.append, block_size=50, blocks_per_buffer=4
    )
    torch.manual_seed(0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 22
    assert all(len(b) == 32 for b in batches[:-1]) and len(batches[-1]) == 700 - 21 * 32
    assert sorted(np.concatenate(batches)) == list(range(700))
    blocks_seen = [len(set(rows[b] // 50)) for b in batches]
    assert max(blocks_seen) <= 8 and np.mean(blocks_seen) > 2  # mixed, but from few blocks
    buffer = iter(loaded)
    current = set(next(buffer))
    for batch in batches:
        while not set(batch) <= current:
            current = set(next(buffer))
    # Two epochs see different orders.
    assert np.concatenate(list(sampler)).tolist() != np.concatenate(batches).tolist()
    for bad in ({"block_size": 0}, {"blocks_per_buffer": -1}, {"block_size": 2.5}):
        with pytest.raises(
            ValueError, match=r"\(of datasplitter_kwargs\) must be a positive integer"
        ):
            BlockShuffleSampler(rows, batch_size=32, load=loaded.append, **bad)


def test_minibatches_are_pinned_only_for_copies_to_a_gpu(adata, monkeypatch):
    manager = _manager(adata)
    assert not TensorDataLoader(manager, pin_memory=False).pin_memory
    # Without CUDA there is nothing to copy to, so pinning is switched off.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not TensorDataLoader(manager, pin_memory=True).pin_memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert TensorDataLoader(manager, pin_memory=True).pin_memory


@requires_cuda
@pytest.mark.parametrize("storage", ["dense", "csr", "sparse"])
def test_minibatches_are_sliced_on_the_gpu_and_equal_the_anndata_rows(adata, storage, monkeypatch):
    if storage == "csr":
        monkeypatch.setattr(_count_rows, "DENSE_LIMIT_BYTES", 0)
    indices = np.array([5, 3, 200, 17, 42, 0, 299])
    loader = TensorDataLoader(
        _manager(adata),
        indices=indices,
        batch_size=3,
        device="cuda",
        load_sparse_tensor=storage == "sparse",
    )
    batches = list(loader)
    assert all(t.device.type == "cuda" for b in batches for t in b.values())
    x = torch.cat([dense_counts(b[REGISTRY_KEYS.X_KEY]) for b in batches]).cpu().numpy()
    np.testing.assert_array_equal(x, adata.X[indices].toarray())


def test_csr_rows_sliced_with_torch_equal_the_scipy_rows(adata):
    """The device-resident (GPU) path's row gather, run on the CPU."""
    matrix = adata.X.tocsr()
    rows = torch.tensor([5, 3, 200, 3, 0])
    arrays = [torch.as_tensor(a) for a in (matrix.indptr, matrix.indices, matrix.data)]
    row_ptr, col, values = csr_rows(*arrays, rows)
    gathered = sp.csr_matrix((values.numpy(), col.numpy(), row_ptr.numpy()), (5, adata.n_vars))
    np.testing.assert_array_equal(gathered.toarray(), matrix[rows.numpy()].toarray())
    row_ptr, col, values = csr_rows(*arrays, torch.tensor([], dtype=torch.long))
    assert row_ptr.tolist() == [0] and len(col) == len(values) == 0


def test_minibatches_are_sparse_by_default_when_the_counts_are(adata):
    assert not counts_are_sparse(_manager(adata))  # 98% non-zero
    manager = _manager(mostly_zeros(adata))
    assert counts_are_sparse(manager)
    assert TensorDataSplitter(manager).load_sparse_tensor
    assert not TensorDataSplitter(manager, load_sparse_tensor=False).load_sparse_tensor
    adata.X = np.ones(adata.shape, dtype=np.float32)
    manager = _manager(adata)
    assert not counts_are_sparse(manager)
    assert not TensorDataSplitter(manager).load_sparse_tensor
    assert TensorDataSplitter(manager, load_sparse_tensor=True).load_sparse_tensor


@pytest.mark.parametrize("load_sparse_tensor", [None, False])
def test_training_reads_the_minibatches_in_the_chosen_layout(adata, load_sparse_tensor):
    layouts = []

    class Layouts(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            layouts.append(batch[REGISTRY_KEYS.X_KEY].layout)

    model = scvae.VAE(_manager(mostly_zeros(adata)).adata, n_hidden=16)
    model.train(max_epochs=1, load_sparse_tensor=load_sparse_tensor, callbacks=[Layouts()], **QUIET)
    expected = torch.strided if load_sparse_tensor is False else torch.sparse_csr
    assert layouts and set(layouts) == {expected}


def test_the_loader_ignores_scvi_tools_options_and_refuses_misspelt_ones(adata):
    manager = _manager(adata)
    loader = TensorDataLoader(manager, batch_size=16, num_workers=4, iter_ndarray=True)
    assert sum(len(batch[REGISTRY_KEYS.X_KEY]) for batch in loader) == adata.n_obs
    with pytest.raises(TypeError, match=r"\['batch_sizes'\] are not options of TensorDataLoader"):
        TensorDataLoader(manager, batch_sizes=16)


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        ({"drop_last": True, "pin_memory": False, "block_size": 64, "num_workers": 4}, None),
        ({"external_indexing": None, "persistent_workers": True}, None),
        ({"sampler": None}, r"\['sampler'\] are options of neither the data splitter"),
        ({"blocks_size": 64}, r"\['blocks_size'\] are options of neither"),
        ({"shuffle": False}, r"\['shuffle'\] are set by the data splitter for each"),
        ({"batch_size": 64}, r"\['batch_size'\] are arguments of train\(\) itself"),
        ({"distributed_sampler": True}, r"set from the trainer's strategy"),
    ],
)
def test_datasplitter_options_are_taken_or_refused_by_name(options, refusal):
    if refusal is None:
        check_splitter_options(options)
    else:
        with pytest.raises(TypeError, match=refusal):
            check_splitter_options(options)
