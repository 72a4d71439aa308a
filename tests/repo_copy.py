"""The repository as a fresh clone would have it, for tests that run `snakemake` in a copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def copy_repo(dst: Path) -> Path:
    """Copy the tracked and not-ignored files (links as links) of this checkout to `dst`."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src, out = ROOT / rel, dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            out.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, out)
    return dst


def fast_env(tmp: Path) -> dict[str, str]:
    """The environment for a `snakemake` subprocess, without the SLURM plugin's `scontrol` wait
    (~10 s a start once the SLURM test installed the client but no controller answers)."""
    stub = tmp / "no_slurm_bin"
    stub.mkdir(exist_ok=True)
    (stub / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (stub / "scontrol").chmod(0o755)
    path = f"{stub}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "PYTHONUNBUFFERED": "1"}


def build_demo(dst: Path) -> subprocess.CompletedProcess:
    """`./quickstart.sh demo`'s snakemake call in a fresh-clone copy at `dst` (~27 min on 2
    idle cores, more on a loaded machine)."""
    copy_repo(dst)
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", "implemented", "--configfile", "config/demo.yaml"],
        cwd=dst,
        capture_output=True,
        text=True,
        timeout=2400,
        env=fast_env(dst.parent),
    )
