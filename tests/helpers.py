"""Small helpers shared by the tests."""

#: Trainer options for tests: no progress bar, history kept in memory by scvi-tools.
QUIET = {"enable_progress_bar": False}
