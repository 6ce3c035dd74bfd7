"""Messages stay on one line, whatever the driver or server put in them."""

from streamer.text import one_line


def test_newlines_and_runs_of_spaces_fold_into_one_space() -> None:
    """A multi-line driver error becomes one line with single spaces."""
    assert one_line("connection refused\n  DETAIL:\tserver down ") == (
        "connection refused DETAIL: server down"
    )
