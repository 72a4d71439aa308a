#!/usr/bin/env python
"""One NIAH generation job: samples per hour and peak memory, the project's sampler against the
official code path, at each context length.

A benchmark script that prints a markdown table; it is not a test (pytest never collects it).

One sample is what the NIAH generation job (`longllada.stages.generation`) does per prompt: a
prompt of L model tokens (random ids here, never the mask token), 32 new tokens with the
paper's NIAH sampler settings, mapped to sampler arguments by the job's own `decoding_for`:

- LLaDA: block_length 32, steps 32, temperature 0, low-confidence remasking, so 32 forwards
  over L + 32 tokens;
- Dream: steps 32, entropy, temperature 0.2, top-p 0.95, the official Categorical check
  (`sampling: paper`), so 32 forwards over L + 32 tokens.

For each L both paths decode the same `--samples` prompts (sample i uses prompt seed + i and a
generator seeded with seed + i, so Dream's random draws are the same in both), after `--warmup`
untimed samples on another prompt:

- project: `generate(..., fast=True)` (final norm + LM head and softmax only on the rows the
  step reads);
- official: `generate(..., fast=False)` (full [1, L, V] logits and softmax every step, as the
  official code).

Columns: ms per sample (mean of the timed samples), samples per hour (3600 / that), peak
memory above what was allocated before a sample (weights excluded), measured as
bench/fast_paths.py does (CUDA: max_memory_allocated over the timed samples; CPU: peak RSS of
one extra sample per path after all timings), and whether both paths returned identical tokens
for every sample. The script exits 1 if any sample's tokens differ (or a path ran out of
memory, so that nothing was compared), 2 on bad arguments or a missing GPU.

It then estimates the device-hours of the paper's NIAH grid for one LLaDA setting (one model,
one RoPE / steps setting): 660 prompts, 110 at each of 6 lengths 2000..32000 (11 depths x 10
repeats). Those lengths are cl100k tokens, which the model's tokenizer turns into somewhat
different counts; the estimate takes them as model tokens L, reads the per-sample time at each
from the measured lengths (log-log interpolation, extrapolated from the two nearest measured
lengths outside them) and is only an estimate.

Modes:
  --model tiny   the demo's tiny LLaDA or Dream (random weights, config/demo.yaml's sizes), CPU,
                 float32, 1 thread by default, L = 256 512 1024 2048.
  --model full   LLaDA-8B's architecture with random fp16 weights, built on the meta device and
                 materialised on the GPU (bench/fast_paths.py's builder), L = 4K 8K 16K 32K.
                 GPU only; LLaDA only.

Examples:
  python bench/niah_generation.py --model tiny --lengths 256 512 --samples 1
  python bench/niah_generation.py --model tiny --family dream
  python bench/niah_generation.py --model full
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fast_paths import (  # noqa: E402  (bench/ is not a package)
    DTYPES,
    LLADA_8B_CONFIG,
    CpuPeak,
    _bytes,
    _sync,
    build_random_llada,
    build_tiny,
    device_problem,
    pin_mmap_threshold,
)

from longllada.sampling import dream as dream_sampling  # noqa: E402
from longllada.sampling import llada as llada_sampling  # noqa: E402
from longllada.stages.generation import decoding_for  # noqa: E402

# config/paper.yaml, benchmarks.niah: the paper's NIAH grid (cl100k tokens) and sampler.
PAPER_NIAH_LENGTHS = (2000, 4000, 8000, 16000, 24000, 32000)
PAPER_NIAH_PROMPTS_PER_LENGTH = 11 * 10  # depths x repeats
PAPER_NIAH_NEW_TOKENS = 32
PAPER_NIAH_SAMPLER = {"llada": {"steps": 32, "block_length": 32}, "dream": {"steps": 32}}
DEFAULTS = {
    "tiny": {"device": "cpu", "dtype": "float32", "lengths": [256, 512, 1024, 2048]},
    "full": {"device": "cuda", "dtype": "float16", "lengths": [4096, 8192, 16384, 32768]},
}
PATHS = (("project", True), ("official", False))  # (name, fast)
PLAIN = {
    "llada": "full [1, L, V] logits and softmax every step",
    "dream": "full [1, L, V] logits every step, shifted",
}


# ------------------------------------------------------------------------------------ models


def build_tiny_dream(device: torch.device, dtype: torch.dtype, seed: int) -> nn.Module:
    """The demo's tiny Dream (config/demo.yaml's dream_tiny_base sizes), via the real loader."""
    from longllada.demo import PRESETS, build_demo_checkpoint
    from longllada.models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        sizes = dict(PRESETS["tiny"]["dream"])
        build_demo_checkpoint("dream", Path(tmp), seed=seed, rope_theta=10000.0, **sizes)
        return load_model(tmp, "dream", dtype=dtype, device=device)


def describe(model: nn.Module) -> str:
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    if model.family == "llada":
        dims = (cfg.d_model, cfg.n_layers, cfg.n_heads)
    else:
        dims = (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads)
    return (
        f"{n_params / 1e6:,.1f}M params, hidden {dims[0]}, {dims[1]} layers, {dims[2]} heads, "
        f"vocab {cfg.vocab_size}"
    )


# ------------------------------------------------------------------------------------ samples


def random_prompt(length: int, vocab: int, mask_id: int, device: torch.device, seed: int):
    """[1, length] random ids in [0, vocab), never the mask token."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab - 1, (1, length), generator=gen)
    ids[ids >= mask_id] += 1  # skip the mask id, wherever it lies in the vocabulary
    return ids.to(device)


def sampler_call(model: nn.Module, args) -> Callable[[torch.Tensor, int, bool], torch.Tensor]:
    """(prompt, seed, fast) -> new tokens, with the job's settings for the paper's NIAH."""
    decoding = decoding_for(model.family, args.sampler, args.new_tokens)
    applied = dict(decoding.applied)
    gen_length = applied.pop("gen_length")
    device = next(model.parameters()).device
    if model.family == "llada":
        settings = llada_sampling.LLaDASettings(**applied)
        generate = llada_sampling.generate
    else:
        settings = dream_sampling.DreamSettings(**applied)
        generate = dream_sampling.generate
    args.applied = {"gen_length": gen_length, **applied}

    def call(prompt: torch.Tensor, seed: int, fast: bool) -> torch.Tensor:
        generator = torch.Generator(device=device).manual_seed(seed)
        return generate(model, prompt, gen_length, settings, generator=generator, fast=fast)

    return call


@dataclass
class Case:
    """One path at one length: its timed samples, their outputs and peak memory."""

    length: int
    path: str
    fast: bool
    times: list[float] = field(default_factory=list)
    outs: list[torch.Tensor] = field(default_factory=list)
    peak: int | None = None
    oom: bool = False
    identical: str = ""

    @property
    def seconds(self) -> float:
        return sum(self.times) / len(self.times) if self.times else math.nan


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc)


def run_case(case: Case, call, prompts, warm_prompt, device: torch.device, args) -> None:
    """Warm up, then time every sample; on CUDA also the peak memory over them."""
    try:
        for _ in range(args.warmup):
            call(warm_prompt, args.seed, case.fast)
        peaks = []
        for i, prompt in enumerate(prompts):
            _sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
            t0 = time.perf_counter()
            out = call(prompt, args.seed + i, case.fast)
            _sync(device)
            case.times.append(time.perf_counter() - t0)
            case.outs.append(out.cpu())
            if device.type == "cuda":
                peaks.append(torch.cuda.max_memory_allocated(device) - before)
        case.peak = max(peaks) if peaks else None
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not _is_oom(exc):
            raise
        case.oom, case.times, case.outs = True, [], []
        if device.type == "cuda":
            torch.cuda.empty_cache()


def verdict(a: Case, b: Case) -> str:
    if a.oom or b.oom:
        return "n/a (out of memory)"
    same = [torch.equal(x, y) for x, y in zip(a.outs, b.outs, strict=True)]
    tokens = sum(int((x == y).sum()) for x, y in zip(a.outs, b.outs, strict=True))
    total = sum(x.numel() for x in a.outs)
    ok = "yes" if all(same) else "NO"
    return f"{ok} ({sum(same)}/{len(same)} samples, {tokens}/{total} tokens)"


# ------------------------------------------------------------------------------------ estimate


def seconds_at(points: dict[int, float], length: int) -> tuple[float, str]:
    """Per-sample seconds at `length` from measured (length -> seconds), and how it was got."""
    xs = sorted(points)
    if length in points:
        return points[length], "measured"
    if len(xs) == 1:
        return points[xs[0]] * length / xs[0], "extrapolated (linear in L)"
    if xs[0] < length < xs[-1]:
        hi = next(i for i, x in enumerate(xs) if x > length)
        a, b, how = xs[hi - 1], xs[hi], "interpolated"
    else:
        a, b = (xs[0], xs[1]) if length < xs[0] else (xs[-2], xs[-1])
        how = "extrapolated"
    slope = math.log(points[b] / points[a]) / math.log(b / a)
    return points[a] * (length / a) ** slope, how


def estimate_lines(cases: list[Case], device: torch.device, args) -> list[str]:
    unit = "GPU-hours" if device.type == "cuda" else "hours on this CPU"
    family = {"llada": "LLaDA", "dream": "Dream"}[args.family]
    per_path = {}
    for name, _ in PATHS:
        points = {c.length: c.seconds for c in cases if c.path == name and not c.oom}
        per_path[name] = points
    if not all(per_path.values()):
        return ["(no estimate: a path has no measured length)"]
    n = PAPER_NIAH_PROMPTS_PER_LENGTH
    total_prompts = n * len(PAPER_NIAH_LENGTHS)
    lines = [
        f"## ESTIMATE: the paper's NIAH grid for one {family} setting, {total_prompts} prompts "
        f"({n} per length)",
        f"# lengths are cl100k tokens, taken here as model tokens L (the model's tokenizer gives "
        f"other counts); per-sample times from the measured lengths above; {unit}",
    ]
    if args.model == "tiny":
        lines.append(
            "# tiny model: its times say nothing about an 8B model's, and lengths beyond the "
            "measured ones are extrapolated"
        )
    lines += [
        "",
        "| length (as L) | prompts | s/sample, project | s/sample, official | from |",
        "|---:|---:|---:|---:|---|",
    ]
    totals = dict.fromkeys(per_path, 0.0)
    for length in PAPER_NIAH_LENGTHS:
        row, hows = [], []
        for name in per_path:
            sec, how = seconds_at(per_path[name], length)
            totals[name] += n * sec
            row.append(sec)
            hows.append(how)
        how = hows[0] if hows[0] == hows[1] else " / ".join(hows)
        lines.append(f"| {length} | {n} | {row[0]:.3f} | {row[1]:.3f} | {how} |")
    lines.append(
        f"| total | {total_prompts} | {totals['project'] / 3600:.3f} {unit} | "
        f"{totals['official'] / 3600:.3f} {unit} | estimate |"
    )
    return lines


# ------------------------------------------------------------------------------------ main


TABLE_HEADER = (
    "| length | path | ms/sample | samples/h | peak mem | identical tokens |\n"
    "|---:|---|---:|---:|---:|---|"
)


def format_row(c: Case) -> str:
    if c.oom:
        return f"| {c.length} | {c.path} | OOM | OOM | OOM | {c.identical} |"
    return (
        f"| {c.length} | {c.path} | {1000 * c.seconds:,.1f} | {3600 / c.seconds:,.0f} | "
        f"{_bytes(c.peak)} | {c.identical} |"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("tiny", "full"), default="tiny")
    p.add_argument("--family", choices=("llada", "dream"), default="llada")
    p.add_argument("--device", help="default: cpu for tiny, cuda for full")
    p.add_argument("--dtype", choices=tuple(DTYPES), help="default: float32 tiny, float16 full")
    p.add_argument("--lengths", type=int, nargs="+", help="prompt lengths L (model tokens)")
    p.add_argument("--samples", type=int, default=2, help="timed samples per path and length")
    p.add_argument("--warmup", type=int, default=1, help="untimed samples per path first")
    p.add_argument("--new-tokens", type=int, default=PAPER_NIAH_NEW_TOKENS)
    p.add_argument("--steps", type=int, help="sampler steps (paper NIAH: 32)")
    p.add_argument("--block-length", type=int, help="LLaDA block (paper NIAH: 32)")
    p.add_argument("--layers", type=int, help="full: fewer layers than 32 (smaller GPUs)")
    p.add_argument("--attn-impl", choices=("auto", "sdpa", "flash"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, help="CPU threads (default: 1 for tiny, torch's default for full)"
    )
    p.add_argument("--no-estimate", action="store_true", help="skip the paper-grid estimate")
    args = p.parse_args(argv)
    d = DEFAULTS[args.model]
    args.device = torch.device(args.device or d["device"])
    args.dtype = args.dtype or d["dtype"]
    args.torch_dtype = DTYPES[args.dtype]
    args.lengths = args.lengths or d["lengths"]
    if args.threads is None and args.model == "tiny":
        args.threads = 1
    if args.samples < 1 or args.warmup < 0:
        p.error("--samples must be >= 1 and --warmup >= 0")
    if min(args.lengths) < 1 or args.new_tokens < 1:
        p.error("lengths and --new-tokens must be >= 1")
    sampler = dict(PAPER_NIAH_SAMPLER[args.family])
    if args.steps is not None:
        sampler["steps"] = args.steps
    if args.block_length is not None:
        if args.family != "llada":
            p.error("--block-length is LLaDA's")
        sampler["block_length"] = args.block_length
    args.sampler = sampler
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = args.device
    if args.model == "full" and args.family != "llada":
        print("--model full builds LLaDA-8B only; Dream runs with --model tiny.", file=sys.stderr)
        return 2
    problem = device_problem(args.model, device)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    if args.model == "tiny" and args.family == "dream":
        model = build_tiny_dream(device, args.torch_dtype, args.seed)
    elif args.model == "tiny":
        model = build_tiny(device, args.torch_dtype, args.seed)
    else:
        config = dict(LLADA_8B_CONFIG)
        if args.layers:
            config["n_layers"] = args.layers
        model = build_random_llada(config, device, args.torch_dtype, args.seed, args.attn_impl)
    built = time.perf_counter() - t0
    call = sampler_call(model, args)
    cpu = CpuPeak() if device.type == "cpu" else None
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
        mem_how = (
            "torch.cuda.max_memory_allocated during the timed samples, above memory_allocated "
            "before each (weights excluded)"
        )
    else:
        where = f"CPU, {torch.get_num_threads()} thread(s)"
        mem_how = f"{cpu.describe()} (a call: one sample)"
    applied = ", ".join(f"{k} {v}" for k, v in args.applied.items() if v is not None)
    print(
        f"# {args.model} {args.family}, random weights: {describe(model)}; {args.dtype} on "
        f"{where}; torch {torch.__version__}; built in {built:.1f} s\n"
        f"# one sample: a random L-token prompt, then {args.applied['gen_length']} new tokens "
        f"({applied})\n"
        f"# project = generate(fast=True), official = generate(fast=False: {PLAIN[args.family]})\n"
        f"# ms/sample: mean of {args.samples} samples after {args.warmup} warmup; "
        f"samples/h = 3600 s / that; peak mem: {mem_how}",
        flush=True,
    )
    cfg = model.config
    cases: list[Case] = []
    prompts_at: dict[int, list[torch.Tensor]] = {}
    for length in args.lengths:
        prompts = [
            random_prompt(length, cfg.vocab_size, model.mask_token_id, device, args.seed + i)
            for i in range(args.samples)
        ]
        warm = random_prompt(length, cfg.vocab_size, model.mask_token_id, device, args.seed - 1)
        prompts_at[length] = prompts
        pair = [Case(length, name, fast) for name, fast in PATHS]
        for case in pair:
            run_case(case, call, prompts, warm, device, args)
            took = "out of memory" if case.oom else f"{1000 * case.seconds:,.1f} ms/sample"
            print(f"#   timed L={length} {case.path}: {took}", flush=True)
        pair[0].identical = pair[1].identical = verdict(*pair)
        cases += pair
    if cpu is not None and cpu.method != "none":
        # After every timing: the pinned mmap threshold slows allocation down.
        pin_mmap_threshold()
        for case in cases:
            if not case.oom:
                prompt = prompts_at[case.length][0]
                case.peak = cpu.measure(lambda c=case, x=prompt: call(x, args.seed, c.fast))
    print()
    print(TABLE_HEADER)
    for case in cases:
        print(format_row(case))
    if not args.no_estimate:
        print()
        print("\n".join(estimate_lines(cases, device, args)))
    print(f"\n# total {time.perf_counter() - t0:.1f} s")
    return 0 if all(c.identical.startswith("yes") for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
