"""logged(): a rule script's logging, stdout and stderr go to its log file."""

from __future__ import annotations

import logging
import sys

import pytest

from longllada.snakejob import logged


@pytest.fixture(autouse=True)
def restore_root_level():
    """logged() sets the root level to INFO and leaves it so; keep that out of other tests."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


def test_logging_print_and_stderr_go_to_file(tmp_path):
    path = tmp_path / "logs" / "rule.log"
    root = logging.getLogger()
    before = list(root.handlers)
    with logged(path) as log:
        log.info("from the job logger")
        logging.info("from the root logger")
        logging.getLogger("longllada.jobs").info("from a package module")
        print("from print")
        sys.stderr.write("from stderr\n")
        print("from print to stderr", file=sys.stderr)
    text = path.read_text()
    for msg in (
        "INFO longllada: from the job logger",
        "INFO root: from the root logger",
        "INFO longllada.jobs: from a package module",
        "from print",
        "from stderr",
        "from print to stderr",
    ):
        assert msg in text, msg
    assert root.handlers == before


def test_appends_to_an_existing_log(tmp_path):
    path = tmp_path / "rule.log"
    path.write_text("earlier attempt\n")
    with logged(path):
        print("second attempt")
    assert path.read_text() == "earlier attempt\nsecond attempt\n"


def test_exception_reraised_with_traceback_in_file(tmp_path):
    path = tmp_path / "rule.log"
    root = logging.getLogger()
    before = list(root.handlers)
    stdout, stderr = sys.stdout, sys.stderr

    def fail_deep():
        raise KeyError("missing-sample-xyz")

    with pytest.raises(KeyError, match="missing-sample-xyz"), logged(path):
        print("before the failure")
        fail_deep()
    text = path.read_text()
    assert "before the failure" in text
    assert "ERROR longllada: job failed" in text
    assert "Traceback (most recent call last)" in text
    assert "in fail_deep" in text
    assert "KeyError: 'missing-sample-xyz'" in text
    assert root.handlers == before
    assert sys.stdout is stdout and sys.stderr is stderr

    # after the block nothing more reaches the file
    logging.getLogger("longllada").error("after the block")
    print("after the block")
    assert "after the block" not in path.read_text()
