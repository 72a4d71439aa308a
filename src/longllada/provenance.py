"""What every result file carries: where its numbers came from."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PACKAGES = (
    "longllada",
    "torch",
    "transformers",
    "huggingface_hub",
    "safetensors",
    "tokenizers",
    "snakemake",
    "numpy",
    "pandas",
    "matplotlib",
    "flash-attn",
    "opencompass",
    "tiktoken",
    "wonderwords",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (None where a package is absent: absence is information too)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    """The accelerator the job ran on, read without initialising CUDA when torch is absent."""
    info: dict[str, Any] = {"host": socket.gethostname(), "cpu": platform.processor() or None}
    info["slurm_job_id"] = os.environ.get("SLURM_JOB_ID")
    if "torch" in sys.modules or _importable("torch"):
        import torch

        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda_version"] = torch.version.cuda
    return info


def _importable(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def pipeline_commit(repo: Path | None = None) -> str | None:
    """The git commit of this workflow, with '-dirty' if the tree has local edits."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


class Stopwatch:
    """Wall time of a job, started when the job starts."""

    def __init__(self) -> None:
        self.started_unix = time.time()
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0


def record(
    stage: str,
    *,
    watch: Stopwatch | None = None,
    model: dict[str, Any] | None = None,
    rope: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    seed: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance block of a result file.

    model: id, hub revision asked and commit resolved, and for a GPU job the attention kernel
    that ran (`model.attention`: impl, requested, paper, reason, flash-attn version; see
    `longllada.models.loading.resolve_attention`); rope: theta before/after and λ;
    settings: sampler / benchmark settings of the run.
    """
    rec: dict[str, Any] = {
        "stage": stage,
        "model": model,
        "rope": rope,
        "settings": settings,
        "seed": seed,
        "packages": package_versions(),
        "device": device_info(),
        "pipeline_commit": pipeline_commit(),
        "finished_unix": time.time(),
    }
    if watch is not None:
        rec["started_unix"] = watch.started_unix
        rec["wall_seconds"] = round(watch.elapsed(), 3)
    rec.update(extra)
    return rec
