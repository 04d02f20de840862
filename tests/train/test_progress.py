"""One progress bar per fit, and under it the reason a fit stopped early, whichever bar."""

from types import SimpleNamespace

import pytest
from lightning.pytorch.callbacks import TQDMProgressBar

from scvae.train import EpochProgressBar, NonFiniteLossGuard, StopReport, with_progress_report


def _kinds(callbacks) -> list[type]:
    return [type(callback) for callback in callbacks]


@pytest.mark.parametrize(
    ("own_bar", "enable", "simple", "expected", "shown"),
    [
        (False, True, False, [NonFiniteLossGuard, EpochProgressBar, StopReport], True),
        (False, False, False, [NonFiniteLossGuard], False),
        (False, True, True, [NonFiniteLossGuard, StopReport], True),  # scvi-tools' bar
        (True, True, False, [NonFiniteLossGuard, TQDMProgressBar, StopReport], True),
        (True, False, False, [NonFiniteLossGuard, TQDMProgressBar, StopReport], True),
    ],
)
def test_one_bar_is_shown_and_the_stop_report_follows_it(own_bar, enable, simple, expected, shown):
    callbacks = [NonFiniteLossGuard(), *([TQDMProgressBar()] if own_bar else [])]
    reported, show = with_progress_report(callbacks, enable, simple)
    assert _kinds(reported) == expected
    assert show is shown
    assert _kinds(callbacks) == expected[: len(callbacks)]  # the caller's list is left as is


@pytest.mark.parametrize("first_process", [True, False])
def test_the_stop_report_writes_the_callbacks_messages(capsys, first_process):
    said = SimpleNamespace(stop_message="Training stopped after epoch 3 of 5: settled.")
    silent = SimpleNamespace(stop_message=None)
    trainer = SimpleNamespace(is_global_zero=first_process, callbacks=[silent, said, object()])
    StopReport().on_train_end(trainer, None)
    expected = "Training stopped after epoch 3 of 5: settled.\n" if first_process else ""
    assert capsys.readouterr().err == expected
