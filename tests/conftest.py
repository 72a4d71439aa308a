"""Shared pytest fixtures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fake_hub import fake_hub  # noqa: F401  (fixture: a local fake Hugging Face hub)
from repo_copy import build_demo


@pytest.fixture(scope="session")
def built_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    """The whole demo, built once per session: test_workflow reads it where it was built,
    test_reruns changes a copy of it. (The repository copy, the snakemake call's result.)"""
    work = tmp_path_factory.mktemp("demo") / "repo"
    return work, build_demo(work)
