"""The GMVAE's schedule is set in optimisation steps, whatever the data size."""

import warnings

import numpy as np
import pytest

import scvae
from scvae.datasets import synthetic_counts
from scvae.model._schedule import (
    REPLACEMENT_STEPS,
    SETTLE_STEPS,
    WARMUP_STEPS,
    GMVAESchedule,
    default_max_epochs,
    steps_per_epoch,
)
from tests.helpers import QUIET


@pytest.mark.parametrize("n_obs", [2_000, 5_000, 50_000, 1_300_000])
def test_warm_up_and_placement_take_the_same_steps_on_any_data_size(n_obs):
    schedule = GMVAESchedule.default(n_obs)
    steps = steps_per_epoch(n_obs, None, 128)
    assert schedule.warmup_epochs == max(1, round(WARMUP_STEPS / steps))
    first, second = schedule.placement_epochs
    assert first == schedule.warmup_epochs + max(1, round(SETTLE_STEPS / steps))
    assert second == first + max(1, round(REPLACEMENT_STEPS / steps))
    assert schedule.last_placement == second
    assert schedule.max_epochs >= max(default_max_epochs(n_obs), second + 1)


def test_a_short_max_epochs_compresses_the_schedule_into_it():
    schedule = GMVAESchedule.default(1000, max_epochs=10)
    assert (schedule.warmup_epochs, schedule.placement_epochs) == (3, (5, 7))
    assert schedule.max_epochs == 10
    assert GMVAESchedule.default(1000, max_epochs=1).placement_epochs == (1,)


def test_given_epochs_are_kept_and_a_placement_after_the_end_is_refused():
    schedule = GMVAESchedule.default(
        1000, max_epochs=40, warmup_epochs=7, placement_epochs=(9, 0, 20)
    )
    assert (schedule.warmup_epochs, schedule.placement_epochs) == (7, (9, 20))
    assert GMVAESchedule.default(1000, placement_epochs=()).placement_epochs == ()
    with pytest.raises(ValueError, match=r"\[50\] are beyond max_epochs=40"):
        GMVAESchedule.default(1000, max_epochs=40, placement_epochs=50)


def test_the_fit_outlasts_the_warm_up_and_placements_wait_for_it():
    # Early placements given: the default length still covers the warm-up (7,000 cells at
    # 128 a minibatch: 1,000 steps are 20 epochs), and stopping waits for the full KL weight.
    schedule = GMVAESchedule.default(7_000, placement_epochs=(2,))
    assert schedule.max_epochs >= schedule.warmup_epochs + 1
    assert schedule.mixture_start == schedule.warmup_epochs > schedule.last_placement
    # A warm-up given with a short max_epochs: the placements come after it.
    short = GMVAESchedule.default(1000, max_epochs=50, warmup_epochs=40)
    assert min(short.placement_epochs) >= 40 and max(short.placement_epochs) <= 50


@pytest.mark.parametrize(
    "options",
    [{"placement_epochs": 2.5}, {"placement_epochs": ("2",)}, {"warmup_epochs": -1}],
)
def test_epochs_that_are_not_whole_numbers_are_named(options):
    with pytest.raises(ValueError, match="must be integers of at least 0"):
        GMVAESchedule.default(1000, **options)


def test_numpy_integers_are_epochs():
    schedule = GMVAESchedule.default(1000, placement_epochs=np.int64(2), warmup_epochs=np.int64(1))
    assert schedule.placement_epochs == (2,)


def test_a_warm_up_longer_than_the_fit_is_refused_and_a_long_one_keeps_its_placements():
    for warmup in (20, 10):  # the placements would come at its end or never
        with pytest.raises(ValueError, match=f"warm-up of {warmup} epochs lasts all max_epochs=10"):
            GMVAESchedule.default(1000, max_epochs=10, warmup_epochs=warmup)
    # Placements given: a warm-up over all the epochs is a choice (scVAE's original schedule).
    given = GMVAESchedule.default(1000, max_epochs=10, warmup_epochs=40, placement_epochs=5)
    assert (given.warmup_epochs, given.placement_epochs) == (40, (5,))
    # 50,000 cells: the default placements after an 18-epoch warm-up fit into 20 epochs.
    schedule = GMVAESchedule.default(50_000, max_epochs=20, warmup_epochs=18)
    assert schedule.placement_epochs and 18 <= min(schedule.placement_epochs)
    assert max(schedule.placement_epochs) <= 20


@pytest.mark.parametrize(
    ("plan_kwargs", "warmup"),
    [
        ({"n_epochs_kl_warmup": 16}, 16),
        ({"n_epochs_kl_warmup": None}, 0),
        ({"n_steps_kl_warmup": 50}, 7),  # 8 steps an epoch
        ({"n_steps_kl_warmup": 50, "n_epochs_kl_warmup": None}, 7),
        ({"n_steps_kl_warmup": 50, "n_epochs_kl_warmup": 3}, 3),  # scvi-tools: epochs first
    ],
)
def test_a_warm_up_in_plan_kwargs_is_the_schedules(plan_kwargs, warmup):
    schedule = GMVAESchedule.default(1000, max_epochs=20, plan_kwargs=plan_kwargs)
    assert schedule.warmup_epochs == warmup
    assert min(schedule.placement_epochs) >= warmup
    with pytest.raises(ValueError, match="given twice"):
        GMVAESchedule.default(1000, warmup_epochs=5, plan_kwargs=plan_kwargs)


def test_a_plan_without_its_warm_up_leaves_the_default():
    default = GMVAESchedule.default(1000, max_epochs=20)
    unset = GMVAESchedule.default(1000, max_epochs=20, plan_kwargs={"n_steps_kl_warmup": None})
    assert unset == default


@pytest.mark.parametrize(
    ("n_obs", "train_size", "batch_size"),
    # 129 cells at train_size=1: a last minibatch of one cell is left out, as the splitter does.
    [(113, None, 100), (143, None, 128), (300, None, 64), (143, 1.0, 128), (129, 1.0, 128)],
)
def test_the_steps_of_an_epoch_are_those_training_takes(n_obs, train_size, batch_size):
    """scvi-tools moves a last minibatch of 1 or 2 cells out of the default split's training
    cells (113 cells: 102 would train, 100 do, in one minibatch of 100)."""
    adata = synthetic_counts(n_cells=n_obs, n_genes=10, seed=0)
    scvae.setup_anndata(adata)
    model = scvae.VAE(adata, n_latent=2, n_hidden=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scvi-tools announces the cells it moves
        model.train(max_epochs=1, train_size=train_size, batch_size=batch_size, **QUIET)
    assert steps_per_epoch(n_obs, train_size, batch_size) == model.trainer.num_training_batches
