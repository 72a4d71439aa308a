"""GPU-time estimates per job, for SLURM runtimes and the README's cost table.

A rough cost model of one H100 running an 8B model in fp16: a forward pass costs about
1/25,000 s per token at short context, and attention doubles that by 32K tokens. A diffusion
sampler runs one forward over prompt + answer per step; an autoregressive model runs one
prefill and then cheap cached decode steps. Calibrated against the paper's totals (TARGETS.md:
NIAH about 110, RULER about 500, LongBench about 900 GPU-hours); expect ±50%.
"""

from __future__ import annotations

import math

from longllada.benchmarks import longbench
from longllada.config import STEPS_PER_TOKEN, Run, Study

SECONDS_PER_TOKEN = 1 / 25_000
ATTENTION_DOUBLING = 32_768
DECODE_SECONDS_PER_TOKEN = 0.03  # one cached decode step of an 8B model


def forward_seconds(tokens: int) -> float:
    return tokens * SECONDS_PER_TOKEN * (1 + tokens / ATTENTION_DOUBLING)


def sample_seconds(run: Run, context: int, new_tokens: int) -> float:
    sampler = dict(run.sampler)
    if run.family == "ar":
        return forward_seconds(context) + new_tokens * DECODE_SECONDS_PER_TOKEN
    if run.family == "llada":  # the official wrapper rounds the output up to whole blocks
        block = sampler["block_length"]
        new_tokens = math.ceil(new_tokens / block) * block
    steps = sampler["steps"]
    steps = new_tokens if steps == STEPS_PER_TOKEN else steps
    return steps * forward_seconds(context + new_tokens)


def unit_work(study: Study, run: Run, unit: str) -> tuple[int, int, int]:
    """(samples, context tokens, new tokens) of one job."""
    cfg = study.benchmarks[run.benchmark]
    limit = cfg.get("sample_limit")
    if run.benchmark == "niah":
        n, ctx, new = len(cfg["depths"]) * cfg["repeats"], int(unit[3:]), cfg["max_new_tokens"]
    elif run.benchmark in ("ruler", "longbench"):
        label, item = unit.split(".samples", 1)[0].split("_", 1)
        ctx = cfg["contexts"][label]
        if run.benchmark == "ruler":
            n, new = cfg["samples"], cfg["max_new_tokens"]
        else:  # a prompt longer than the budget is cut to it: the cost of a full one
            n, new = longbench.SUBSETS[item].n_samples, longbench.answer_tokens(item, cfg)
        if ".samples" in unit:  # one shard: 4k_vt.samples0-50
            first, stop = unit.split(".samples", 1)[1].split("-")
            return (int(stop) - int(first), ctx, new)
    elif run.benchmark == "ppl":
        tokens, chunk = cfg["max_tokens"], cfg["chunk"]
        draws = cfg["mc_draws"] if study.models[run.model].diffusion else 0
        return (max(1, (tokens // chunk) * draws), tokens // 2, 0)
    else:  # qk_states: one forward
        return (1, cfg["length"], 0)
    return (min(n, limit) if limit else n, ctx, new)


def unit_gpu_seconds(study: Study, run: Run, unit: str) -> float:
    n, ctx, new = unit_work(study, run, unit)
    if run.benchmark in ("ppl", "qk_states"):
        return n * forward_seconds(ctx)
    return n * sample_seconds(run, ctx, new)


def shards(study: Study, run: Run, unit: str) -> list[tuple[int, int]]:
    """The sample ranges [first, stop) one RULER or LongBench job is split into: as few equal
    ranges as keep each under `shard_minutes` of estimated GPU time (none set: one range)."""
    n, ctx, new = unit_work(study, run, unit)
    minutes = study.benchmarks[run.benchmark].get("shard_minutes")
    k = 1
    if minutes:
        k = max(1, min(n, math.ceil(n * sample_seconds(run, ctx, new) / (60 * minutes))))
    bounds = [round(i * n / k) for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def slurm_runtime_minutes(study: Study, run: Run, unit: str, attempt: int = 1) -> int:
    """A generous wall-time request: twice the estimate plus model loading, per attempt."""
    estimate = unit_gpu_seconds(study, run, unit) / 60
    return int(math.ceil((2 * estimate + 15) * attempt))


def run_gpu_hours(study: Study, run: Run) -> float:
    """GPU-hours of one run's jobs."""
    units = study.units(run.benchmark, run.model)
    return sum(unit_gpu_seconds(study, run, u) for u in units) / 3600


def target_gpu_hours(study: Study, name: str) -> float:
    """GPU-hours of the runs a target needs (shared runs counted in each target)."""
    return sum(run_gpu_hours(study, run) for run in study.targets[name].runs)


def study_gpu_hours(study: Study, extensions: bool = False) -> dict[str, float]:
    """GPU-hours per benchmark over the deduplicated runs of the paper's targets (`all`), or
    with `extensions` over the runs only the extensions make."""
    paper = study.paper_runs()
    out: dict[str, float] = {}
    for run in study.runs.values():
        if (run in paper) == extensions:
            continue
        out[run.benchmark] = out.get(run.benchmark, 0.0) + run_gpu_hours(study, run)
    return out
