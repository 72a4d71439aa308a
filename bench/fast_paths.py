#!/usr/bin/env python
"""Fast paths against plain paths: speed, peak memory, and that they return the same thing.

A benchmark script that prints a markdown table; it is not a test (pytest never collects it).

For each context length L it measures two pairs of code paths on a LLaDA model:

- sampler step: `longllada.sampling.llada.generate(..., fast=True)` (final norm + LM head and
  softmax only on the current block's masked rows) against `fast=False` (full [1, L, V] logits and
  a full softmax, as the official code). One call decodes one block of `--block-length` tokens
  after a prompt of L - block tokens in `--sampler-steps` steps; ms is per step (call / steps),
  tokens/s is L tokens through the model per step. Identical: the decoded tokens are equal.
- PPL chunk: `longllada.likelihood.mc_draw_losses(..., batched=True)` (all draws in one forward,
  LM head only on the masked rows) against `batched=False` (one forward per draw, full logits).
  The chunk is the last one that fits in L tokens (prompt L - chunk, answer chunk). tokens/s is
  draws x L tokens through the model per second. Identical: every per-draw loss is allclose.

Peak memory ("peak mem") is the peak above what was allocated just before a call (weights and
inputs excluded):

- CUDA: torch.cuda.max_memory_allocated() after reset_peak_memory_stats(), minus
  memory_allocated() before the call, the largest over the timed calls (tensor bytes; the
  caching allocator's reserve excluded).
- CPU: the process's peak RSS during one extra call of each path, made after all timings, minus
  its RSS before: VmHWM from /proc/self/status, reset through /proc/self/clear_refs (Linux
  >= 4.0), after glibc's malloc_trim(0) and with its mmap threshold pinned at 64 KiB (mallopt),
  so that the call's tensors show up in RSS even where they reuse freed heap memory. Where /proc
  is unavailable it falls back to sampling RSS with psutil every 0.2 ms (which may miss short
  peaks), else "n/a". Not tracemalloc, which does not see torch's allocations.

The "logits (analytic)" column is the size of the largest vocabulary-wide tensors each path
holds at once (logits + softmax for the sampler step, logits for the PPL chunk), computed from
the shapes, for comparison with the measured peak.

Modes:
  --model tiny   the demo's tiny LLaDA (random weights, built like config/demo.yaml's), CPU,
                 1 thread by default (2-thread timings on a shared 2-core VM varied up to 10x).
  --model full   LLaDA-8B's architecture (d_model 4096, 32 layers, 32 heads, MLP 12288, vocab
                 126464) with random weights, built on the meta device and materialised on the
                 GPU in fp16 (no checkpoint needed). GPU only.

Examples:
  python bench/fast_paths.py --model tiny
  python bench/fast_paths.py --model full --lengths 4096 8192 16384 32768 --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from longllada import likelihood
from longllada.models.llada import LLaDAConfig, LLaDAModelLM
from longllada.sampling import llada as llada_sampling

# LLaDA-8B-Base's config.json (GSAI-ML/LLaDA-8B-Base), the keys LLaDAConfig.from_hub reads and
# checks; the remaining hub keys (dropout rates, init settings, auto_map...) do not change the
# forward and are left out.
LLADA_8B_CONFIG: dict[str, Any] = {
    "model_type": "llada",
    "d_model": 4096,
    "n_layers": 32,
    "n_heads": 32,
    "n_kv_heads": 32,
    "mlp_hidden_size": 12288,
    "mlp_ratio": 4,
    "vocab_size": 126464,
    "embedding_size": 126464,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-05,
    "mask_token_id": 126336,
    "max_sequence_length": 4096,
    "activation_type": "silu",
    "alibi": False,
    "attention_layer_norm": False,
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "block_type": "llama",
    "include_bias": False,
    "include_qkv_bias": False,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "multi_query_attention": None,
    "rope": True,
    "rope_full_precision": True,
    "scale_logits": False,
    "weight_tying": False,
}
INIT_STD = 0.02
DEFAULTS = {
    "tiny": {"device": "cpu", "dtype": "float32", "lengths": [256, 512, 1024, 2048], "repeats": 3},
    "full": {
        "device": "cuda",
        "dtype": "float16",
        "lengths": [4096, 8192, 16384, 32768],
        "repeats": 2,
    },
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


# ------------------------------------------------------------------------------------ models


def build_tiny(device: torch.device, dtype: torch.dtype, seed: int) -> nn.Module:
    """The demo's tiny LLaDA (config/demo.yaml's llada_tiny_base sizes), via the real loader."""
    from longllada.demo import PRESETS, build_demo_checkpoint
    from longllada.models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        sizes = dict(PRESETS["tiny"]["llada"])
        build_demo_checkpoint("llada", Path(tmp), seed=seed, rope_theta=10000.0, **sizes)
        return load_model(tmp, "llada", dtype=dtype, device=device)


def build_random_llada(
    hub_config: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    seed: int = 0,
    attn_impl: str = "auto",
) -> LLaDAModelLM:
    """A LLaDA of `hub_config`'s architecture with random weights, allocated only on `device`.

    Built on the meta device (no memory), then `to_empty` allocates every tensor on `device` in
    `dtype` and they are filled in place: N(0, 0.02) for projections and embeddings, 1 for the
    RMSNorm weights. The RoPE buffers are recomputed (to_empty leaves them uninitialised).
    """
    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig.from_hub(hub_config), attn_impl=attn_impl)
    model = model.to(dtype=dtype).to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("ln_f.weight"):
                param.fill_(1.0)
            else:
                param.normal_(0.0, INIT_STD, generator=gen)
    for module in model.modules():
        if hasattr(module, "reset_buffers"):
            module.reset_buffers(device)
    return model.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------ memory


def pin_mmap_threshold() -> bool:
    """Make glibc serve every block over 64 KiB by mmap, so that a freed tensor leaves RSS.

    Slows allocation down (page faults on every big tensor), so only the memory pass runs with
    it, after every timing. Returns False where it cannot be set (no glibc).
    """
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def release_free_heap() -> None:
    """glibc malloc_trim(0): hand free heap pages back to the OS, so that the next call's
    allocations show up in RSS even where they reuse chunks freed by earlier calls."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class CpuPeak:
    """Peak RSS above the RSS at the start of a `with` block (see the module docstring)."""

    def __init__(self) -> None:
        self.method = self._method()

    @staticmethod
    def _method() -> str:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            CpuPeak._status()
            return "vmhwm"
        except (OSError, KeyError, ValueError):
            pass
        try:
            import psutil  # noqa: F401
        except ImportError:
            return "none"
        return "psutil"

    @staticmethod
    def _status() -> dict[str, int]:
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0]) * 1024  # kB
        return out

    def measure(self, fn: Callable[[], Any]) -> int | None:
        release_free_heap()
        if self.method == "vmhwm":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS
            before = self._status()["VmRSS"]
            fn()
            return max(0, self._status()["VmHWM"] - before)
        if self.method == "psutil":
            import psutil

            proc = psutil.Process()
            before = proc.memory_info().rss
            peak = [before]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], proc.memory_info().rss)
                    time.sleep(0.0002)

            thread = threading.Thread(target=sample, daemon=True)
            thread.start()
            try:
                fn()
            finally:
                done.set()
                thread.join()
            return max(0, peak[0] - before)
        return None

    def describe(self) -> str:
        return {
            "vmhwm": "peak RSS above the RSS before the call (VmHWM reset by clear_refs; "
            "glibc malloc_trim before, mmap threshold 64 KiB), one extra call after all timings",
            "psutil": "peak RSS above the RSS before the call (psutil sampling every 0.2 ms, "
            "may miss short peaks), one extra call after all timings",
            "none": "not measured (neither /proc nor psutil)",
        }[self.method]


# ------------------------------------------------------------------------------------ timing


@dataclass
class Case:
    """One code path at one length: how to call it and what it computed."""

    length: int
    path: str
    call: Callable[[], Any]
    per_call: int  # units (steps, chunks) per call: ms is per unit
    tokens: int  # tokens through the model per unit
    analytic: int  # bytes of the largest vocabulary-wide tensors
    seconds: float = math.nan  # per unit
    peak: int | None = None
    out: Any = None
    identical: str = ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(case: Case, device: torch.device, warmup: int, repeats: int) -> None:
    """Median wall time of `repeats` calls after `warmup`; on CUDA also their peak memory."""
    for _ in range(warmup):
        case.call()
    times, peaks = [], []
    for _ in range(repeats):
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        case.out = case.call()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if device.type == "cuda":
            peaks.append(torch.cuda.max_memory_allocated(device) - before)
    case.seconds = statistics.median(times) / case.per_call
    case.peak = max(peaks) if peaks else None


# ------------------------------------------------------------------------------------ benches


def _random_ids(n: int, vocab: int, mask_id: int, device: torch.device, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab - 1, (n,), generator=gen)
    ids[ids == mask_id] = vocab - 1  # never the mask token (LLaDA's is not the last id)
    assert not (ids == mask_id).any()
    return ids.to(device)


def sampler_cases(model, length: int, args) -> tuple[list[Case], Callable[[], str]]:
    block, steps = args.block_length, args.sampler_steps
    settings = llada_sampling.LLaDASettings(steps=steps, block_length=block)
    cfg = model.config
    prompt = _random_ids(length - block, cfg.vocab_size, cfg.mask_token_id, args.device, args.seed)
    elt = torch.finfo(args.torch_dtype).bits // 8
    cases = []
    for name, fast in (("fast", True), ("plain", False)):

        def call(fast=fast):
            return llada_sampling.generate(model, prompt[None], block, settings, fast=fast)

        rows = block if fast else length  # logits rows at the block's first step
        analytic = 2 * rows * cfg.vocab_size * elt  # logits + softmax
        cases.append(Case(length, f"sampler step, {name}", call, steps, length, analytic))

    def verdict() -> str:
        a, b = cases[0].out, cases[1].out
        n_equal = int((a == b).sum())
        return f"{'yes' if torch.equal(a, b) else 'NO'} ({n_equal}/{block} tokens equal)"

    return cases, verdict


def ppl_cases(model, length: int, args) -> tuple[list[Case], Callable[[], str]]:
    chunk, draws = args.chunk, args.draws
    cfg = model.config
    ids = _random_ids(length, cfg.vocab_size, cfg.mask_token_id, args.device, args.seed)
    i = length // chunk - 2  # the last chunk that fits: prompt length - chunk, answer chunk
    _, masks = likelihood.MaskSampler(args.seed).masks(i, chunk, draws)
    elt = torch.finfo(args.torch_dtype).bits // 8
    cases = []
    for name, batched in (("batched", True), ("per-draw", False)):

        def call(batched=batched):
            sampler = likelihood.MaskSampler(args.seed)
            return likelihood.mc_draw_losses(
                model, ids, i, chunk, draws, sampler=sampler, batched=batched
            )

        rows = int(masks.sum()) if batched else length  # all draws' masked rows, or one draw's L
        analytic = rows * cfg.vocab_size * elt
        cases.append(Case(length, f"PPL chunk, {name}", call, 1, draws * length, analytic))

    def verdict() -> str:
        a = torch.tensor(cases[0].out, dtype=torch.float64)
        b = torch.tensor(cases[1].out, dtype=torch.float64)
        close = torch.isclose(a, b, rtol=args.rtol, atol=args.atol)
        ok = "yes" if bool(close.all()) else "NO"
        diff = float((a - b).abs().max())
        return f"{ok} ({int(close.sum())}/{draws} draws allclose, max diff {diff:.1e})"

    return cases, verdict


def _bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


TABLE_HEADER = (
    "| length | path | ms | tokens/s | peak mem | logits (analytic) | identical |\n"
    "|---:|---|---:|---:|---:|---:|---|"
)


def format_row(c: Case) -> str:
    return (
        f"| {c.length} | {c.path} | {1000 * c.seconds:.1f} | {c.tokens / c.seconds:,.0f} | "
        f"{_bytes(c.peak)} | {_bytes(c.analytic)} | {c.identical} |"
    )


# ------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("tiny", "full"), default="tiny")
    p.add_argument("--device", help="default: cpu for tiny, cuda for full")
    p.add_argument("--dtype", choices=tuple(DTYPES), help="default: float32 tiny, float16 full")
    p.add_argument("--lengths", type=int, nargs="+", help="context lengths (tokens)")
    p.add_argument("--repeats", type=int, help="timed calls per path (median; 3 tiny, 2 full)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per path first")
    p.add_argument("--benches", nargs="+", choices=("sampler", "ppl"), default=["sampler", "ppl"])
    p.add_argument("--block-length", type=int, default=32, help="sampler block (paper: 32)")
    p.add_argument("--sampler-steps", type=int, default=4, help="steps for the one block")
    p.add_argument("--chunk", type=int, default=likelihood.DEFAULT_CHUNK)
    p.add_argument("--draws", type=int, default=likelihood.DEFAULT_DRAWS)
    p.add_argument("--layers", type=int, help="full: fewer layers than 32 (smaller GPUs)")
    p.add_argument("--attn-impl", choices=("auto", "sdpa", "flash"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads (default: 1 for tiny, whose 2-thread timings varied up to 10x "
        "between identical calls on a shared 2-core VM; torch's default for full)",
    )
    p.add_argument("--rtol", type=float, help="loss tolerance (default 1e-5 fp32, 1e-3 half)")
    p.add_argument("--atol", type=float, help="loss tolerance (default 1e-6 fp32, 1e-3 half)")
    args = p.parse_args(argv)
    d = DEFAULTS[args.model]
    args.device = torch.device(args.device or d["device"])
    args.dtype = args.dtype or d["dtype"]
    args.repeats = args.repeats or d["repeats"]
    args.torch_dtype = DTYPES[args.dtype]
    args.lengths = args.lengths or d["lengths"]
    if args.threads is None and args.model == "tiny":
        args.threads = 1
    half = args.torch_dtype != torch.float32
    args.rtol = args.rtol if args.rtol is not None else (1e-3 if half else 1e-5)
    args.atol = args.atol if args.atol is not None else (1e-3 if half else 1e-6)
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    if args.sampler_steps < 1 or args.sampler_steps > args.block_length:
        p.error("--sampler-steps must be in 1..--block-length")
    if min(args.lengths) <= args.block_length:
        p.error("every length must exceed --block-length")
    return args


def device_problem(model: str, device: torch.device) -> str | None:
    """Why `--model` cannot run on `device` here (None when it can)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        return (
            f"--model {model} needs a CUDA GPU, and torch {torch.__version__} sees none "
            "(torch.cuda.is_available() is False). The full-size model (LLaDA-8B architecture, "
            "16 GB of fp16 weights, up to 32K-token contexts) runs on a GPU node only; on a CPU, "
            "run --model tiny."
        )
    if model == "full" and device.type != "cuda":
        return "--model full runs on a GPU only (--device cuda); on a CPU, run --model tiny."
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = args.device
    problem = device_problem(args.model, device)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if "ppl" in args.benches:
        bad = [n for n in args.lengths if n % args.chunk or n < 2 * args.chunk]
        if bad:
            print(
                f"PPL lengths must be multiples of --chunk {args.chunk} and at least "
                f"{2 * args.chunk}: {bad}",
                file=sys.stderr,
            )
            return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    if args.model == "tiny":
        model = build_tiny(device, args.torch_dtype, args.seed)
    else:
        config = dict(LLADA_8B_CONFIG)
        if args.layers:
            config["n_layers"] = args.layers
        model = build_random_llada(config, device, args.torch_dtype, args.seed, args.attn_impl)
    built = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    cpu = CpuPeak() if device.type == "cpu" else None
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
        mem_how = (
            "torch.cuda.max_memory_allocated during the timed calls, above memory_allocated "
            "before each (weights excluded)"
        )
    else:
        where = f"CPU, {torch.get_num_threads()} threads"
        mem_how = cpu.describe()
    print(
        f"# {args.model} LLaDA, random weights: {n_params / 1e6:,.1f}M params, d_model "
        f"{cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads, vocab {cfg.vocab_size}; "
        f"{args.dtype} on {where}; torch {torch.__version__}; built in {built:.1f} s\n"
        f"# sampler step: one block of {args.block_length} tokens in {args.sampler_steps} "
        f"steps after an (L - {args.block_length})-token prompt, ms per step, tokens/s = L per "
        f"step\n# PPL chunk: the last {args.chunk}-token chunk of L tokens, {args.draws} draws, "
        f"ms per chunk, tokens/s = draws x L per chunk\n"
        f"# ms: median of {args.repeats} calls after {args.warmup} warmup; peak mem: {mem_how}",
        flush=True,
    )
    makers = {"sampler": sampler_cases, "ppl": ppl_cases}
    cases: list[Case] = []
    for length in args.lengths:
        for name in args.benches:
            pair, verdict = makers[name](model, length, args)
            for case in pair:
                time_case(case, device, args.warmup, args.repeats)
                print(f"#   timed L={length} {case.path}: {1000 * case.seconds:.1f} ms", flush=True)
            pair[0].identical = pair[1].identical = verdict()
            cases += pair
    if cpu is not None and cpu.method != "none":
        # After every timing: the pinned mmap threshold slows allocation down.
        pin_mmap_threshold()
        for case in cases:
            case.peak = cpu.measure(case.call)
    print()
    print(TABLE_HEADER)
    for case in cases:
        print(format_row(case))
    print(f"\n# total {time.perf_counter() - t0:.1f} s")
    return 0 if all(c.identical.startswith("yes") for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
