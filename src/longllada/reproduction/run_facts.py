"""Where a run's numbers came from, read back from its result files, and what it cost.

A run's result files (``scores.json`` of a generative run, the perplexity ``.json``, the Q/K
``.npz``) carry provenance records (:mod:`longllada.provenance`); the GPU time is the sum of the
``s`` column of the Snakemake ``benchmark:`` files of its jobs, beside the cost model's estimate
(:func:`longllada.budget.run_gpu_hours`). Benchmark files are read where they are, not declared
as inputs: a lost one must not make Snakemake rerun a GPU job to rebuild a report.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longllada import budget
from longllada.config import Run, Study

# The packages a reader checks first; the result files record more.
KEY_PACKAGES = ("torch", "transformers", "opencompass", "tiktoken", "wonderwords", "longllada")


@dataclass
class RunFacts:
    run: Run
    files: list[str]
    present: int  # result files found
    model_id: str | None = None
    revision: str | None = None
    commits: list[str] = field(default_factory=list)
    ntk_lambda: float | None = None
    rope_theta: float | None = None
    sampler: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    sample_limit: int | None = None
    n_samples: int | None = None
    n_full: int | None = None
    dtype: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    gpu_seconds: float | None = None  # from the benchmark files found
    jobs_timed: int = 0
    jobs: int = 0
    estimate_hours: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.present == len(self.files):
            return "done"
        return "partial" if self.present else "not run"

    @property
    def limited(self) -> bool:
        """Fewer samples than the benchmark's (a sample limit or a short run)."""
        short = self.n_samples is not None and self.n_full is not None
        return self.sample_limit is not None or (short and self.n_samples < self.n_full)


def _records(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(provenance records of the jobs that made a result file, the file's top level)."""
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            return [json.loads(str(data["provenance"]))], {}
    data = json.loads(path.read_text(encoding="utf-8"))
    prov = data.get("provenance") or {}
    if "generation" in prov:  # a score job: the records of the generation jobs it scored
        return list(prov["generation"]), data
    return [prov], data


def _device(record: dict[str, Any]) -> str:
    device = record.get("device") or {}
    if device.get("gpu"):
        return str(device["gpu"])
    return "cpu" if device else "unknown"


def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v is not None))


def benchmark_files(run: Run, study: Study) -> list[Path]:
    """The Snakemake benchmark file of each of the run's jobs (the rules' ``benchmark:``)."""
    base = Path("benchmarks") / run.benchmark / run.model / run.setting
    return [base / f"{unit}.tsv" for unit in study.run_units(run)]


def benchmark_seconds(path: Path) -> float:
    """The wall seconds a Snakemake benchmark file records (the sum of its repeats' ``s``)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "s" not in rows[0]:
        raise ValueError(f"{path}: no 's' column (not a Snakemake benchmark file)")
    return sum(float(r["s"]) for r in rows)


def run_facts(study: Study, run: Run, root: str | Path = ".") -> RunFacts:
    """The facts of one run, read from what is on disk under ``root``; a file that cannot be
    read is a problem on the result, never an exception."""
    root = Path(root)
    files = study.result_files(run)
    facts = RunFacts(run=run, files=files, present=0)
    facts.jobs = len(study.run_units(run))
    facts.estimate_hours = budget.run_gpu_hours(study, run)
    records: list[dict[str, Any]] = []
    for name in files:
        path = root / name
        if not path.exists():
            continue
        try:
            recs, top = _records(path)
        except (OSError, ValueError, KeyError) as e:
            facts.problems.append(f"{name}: cannot read its provenance ({e})")
            continue
        facts.present += 1
        records += [r for r in recs if isinstance(r, dict)]
        if "sample_limit" in top:
            facts.sample_limit = top.get("sample_limit")
        if "n_samples" in top and "n_full" in top:
            facts.n_samples = int(top["n_samples"])
            facts.n_full = int(top["n_full"])
    models = [r.get("model") or {} for r in records]
    ropes = [r.get("rope") or {} for r in records]
    settings = [r.get("settings") or {} for r in records]
    facts.model_id = next((m.get("hub_id") or m.get("local_dir") for m in models if m), None)
    if facts.model_id is None and any(m.get("demo") for m in models):
        facts.model_id = f"demo:{run.model}"
    facts.revision = next((m.get("revision") for m in models if m.get("revision")), None)
    facts.commits = _unique(m.get("commit_sha") for m in models)
    facts.ntk_lambda = next((r.get("ntk_lambda") for r in ropes if r), None)
    facts.rope_theta = next((r.get("new_theta") or r.get("old_theta") for r in ropes if r), None)
    if facts.rope_theta is None and records:
        facts.rope_theta = study.models[run.model].rope_theta  # λ = 1: the checkpoint's own
    facts.sampler = next((s.get("applied") or s.get("sampler") for s in settings if s), None) or {}
    dtypes = _unique([*(s.get("dtype") for s in settings), *(r.get("dtype") for r in records)])
    facts.dtype = ", ".join(map(str, dtypes)) or None
    facts.seed = next((r.get("seed") for r in records if r.get("seed") is not None), None)
    for name in KEY_PACKAGES:
        versions = _unique((r.get("packages") or {}).get(name) for r in records)
        if versions:
            facts.packages[name] = ", ".join(map(str, versions))
    facts.devices = _unique(_device(r) for r in records)
    seconds = []
    for path in benchmark_files(run, study):
        full = root / path
        if not full.exists():
            continue
        try:
            seconds.append(benchmark_seconds(full))
        except (OSError, ValueError, KeyError) as e:
            facts.problems.append(str(e))
    facts.jobs_timed = len(seconds)
    facts.gpu_seconds = sum(seconds) if seconds else None
    return facts
