"""quiet_training hides what a user did not ask for and passes the rest through."""

import sys

from scvae.train import quiet_training


def test_scvi_tools_print_of_a_failure_is_dropped_and_nothing_else(capsys):
    with quiet_training():
        print("before")
        print("Exception raised during training.", NameError, ValueError("one\ntwo lines"))
        print("after", flush=True)
        # A text stream's own attributes are still there for code that reads them.
        assert sys.stdout.line_buffering in (True, False) and sys.stdout.buffer is not None
    assert capsys.readouterr().out == "before\nafter\n"
