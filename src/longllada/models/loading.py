"""Build a model from a hub-layout checkpoint directory, strictly, one shard at a time.

LLaDA and Dream are built from our own modules (models/llada.py, models/dream.py) on the meta
device, then each safetensors tensor is copied straight to its target device and dtype and put in
place: an 8B model never exists twice in memory, and no hub code is ever run. Every tensor name
and shape is checked against the module before any data is read, so a wrong or incomplete
checkpoint fails in seconds with the names at fault. LLaMA (the autoregressive baseline) goes
through transformers, whose LlamaForCausalLM is the reference implementation.

The attention kernel is chosen here too (`resolve_attention`), before any weight is read, and the
loaded model carries what was chosen as `model.attention_record` for the result's provenance.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from longllada.files import dangling_link

__all__ = [
    "ATTN_CHOICES",
    "FAMILIES",
    "AttentionUnavailableError",
    "CheckpointError",
    "UnsupportedConfigError",
    "load_model",
    "load_tokenizer",
    "model_type_problem",
    "paper_attention",
    "resolve_attention",
]

log = logging.getLogger(__name__)

FAMILIES = ("llada", "dream", "ar")
SINGLE_WEIGHTS = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

# config.json model_type of each family's hub checkpoints (compared case-insensitively).
_MODEL_TYPES = {"llada": "llada", "dream": "dream"}
# The autoregressive baseline is the paper's LLaMA3: run on transformers' LlamaForCausalLM, its
# RoPE patched in the LLaMA keys. Another architecture would load through AutoModel silently.
_AR_MODEL_TYPE = "llama"
_DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
_SHOW = 5  # names listed per kind of problem in an error message
# What reading a safetensors file can raise: the Rust SafetensorError (bad header, truncated
# file), OSError (I/O, mmap), and RuntimeError / ValueError from torch and transformers.
_READ_ERRORS = (SafetensorError, OSError, RuntimeError, ValueError)
# Files AutoTokenizer reads as JSON, checked one by one when loading the tokenizer fails.
_TOKENIZER_JSON = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

# A model's `attn_impl:` in the config. "auto" runs what the paper's runs ran, where it can.
ATTN_CHOICES = ("auto", "sdpa", "flash")
# transformers' names of our kernels (LLaMA3 runs on transformers' own attention).
_HF_ATTENTION = {"sdpa": "sdpa", "flash": "flash_attention_2"}
_KERNEL_NAMES = {"sdpa": "torch SDPA", "flash": "flash-attn"}


class CheckpointError(ValueError):
    """A checkpoint does not match the model: missing, unexpected or misshapen tensors, or a
    config.json that cannot be read."""


class UnsupportedConfigError(CheckpointError):
    """config.json asks for a setting our implementation does not have (the key is named)."""


class AttentionUnavailableError(RuntimeError):
    """`attn_impl: flash` where flash-attn cannot run: not installed, no CUDA device, or fp32."""


def load_model(
    model_dir: str | Path,
    family: str,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    attn_impl: str = "auto",
    key: str | None = None,
    benchmark: str | None = None,
) -> nn.Module:
    """Load the checkpoint in `model_dir` as `family` ("llada", "dream" or "ar"), in eval mode
    with gradients off.

    rope_theta is read from config.json here, so NTK scaling must have patched the file before.
    attn_impl ("auto" | "sdpa" | "flash"): the attention kernel, see `resolve_attention`; what
    runs is in the returned model's `attention_record`. `key`: the model's key in the config,
    named in messages; `benchmark`: the run's, when known (it decides what "auto" means).
    Raises AttentionUnavailableError for a "flash" that cannot run here, before anything is
    read, and CheckpointError (or its subclass UnsupportedConfigError) naming what is wrong
    with the checkpoint.
    """
    model_dir = Path(model_dir)
    torch_dtype = _as_dtype(dtype)
    device = torch.device(device)
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    attention = resolve_attention(family, attn_impl, torch_dtype, device, key, benchmark)
    cfg = _read_config(model_dir)
    problem = model_type_problem(cfg, family)
    if problem:
        who = f"models.{key}: " if key else ""
        raise CheckpointError(f"{who}{model_dir / 'config.json'} {problem}")
    if family == "ar":
        ar_model = _load_ar(model_dir, torch_dtype, device, _HF_ATTENTION[attention["impl"]])
        # Name what transformers actually set up, not only what was asked of it.
        ran = getattr(ar_model.config, "_attn_implementation", None)
        ours = {hf: name for name, hf in _HF_ATTENTION.items()}
        attention["impl"] = ours.get(ran, ran or attention["impl"])
        attention["transformers"] = ran
        ar_model.attention_record = attention
        return ar_model

    # Imported here: the model files import the error classes from this module.
    from longllada.models.dream import DreamConfig, DreamModel
    from longllada.models.llada import LLaDAConfig, LLaDAModelLM

    # Built on the meta device: parameters get shapes but no memory until the checkpoint fills
    # them in.
    impl = attention["impl"]
    with torch.device("meta"):
        if family == "llada":
            model: nn.Module = LLaDAModelLM(LLaDAConfig.from_hub(cfg), attn_impl=impl)
        else:
            model = DreamModel(DreamConfig.from_hub(cfg), attn_impl=impl)
    _load_weights(model, model_dir, torch_dtype, device)
    # The RoPE inv_freq buffers are not in the checkpoint: compute them for real now.
    for module in model.modules():
        if hasattr(module, "reset_buffers"):
            module.reset_buffers(device)
    model.attention_record = attention
    return model.eval().requires_grad_(False)


def paper_attention(family: str, benchmark: str | None = None) -> str:
    """The kernel of the paper's runs of `family` on `benchmark` ("flash" or "sdpa").

    The official benchmark wrapper (NIAH, RULER, LongBench) set `config.flash_attention = True`
    for every model: LLaDA's hub code then ran flash-attn, Dream's ignores the flag (SDPA), and
    for LLaMA3 it is no transformers setting (transformers 4.46.3 defaults to SDPA). The official
    perplexity script loaded LLaDA without it (the hub config.json says false): SDPA.
    """
    return "flash" if family == "llada" and benchmark != "ppl" else "sdpa"


def resolve_attention(
    family: str,
    requested: str,
    dtype: torch.dtype,
    device: torch.device,
    key: str | None = None,
    benchmark: str | None = None,
) -> dict[str, Any]:
    """The attention kernel a model of `family` runs, as its provenance record.

    "auto": what the paper's runs ran (`paper_attention`): flash-attn for LLaDA where it can run
    here (installed, CUDA, fp16/bf16), else SDPA with a warning; SDPA for Dream and LLaMA3, and
    for LLaDA's perplexity. "sdpa": SDPA. "flash": flash-attn, or AttentionUnavailableError
    naming the model and the key when it cannot run here. Returns {"impl", "requested", "paper",
    "reason"}, plus "flash_attn" (the package's version) when flash-attn runs.
    """
    if requested not in ATTN_CHOICES:
        raise ValueError(f"attn_impl must be one of {ATTN_CHOICES}, got {requested!r}")
    paper = paper_attention(family, benchmark)
    who = f"model {key}" if key else f"the {family} model"
    option = f"models.{key}.attn_impl" if key else "attn_impl"
    problem, remedy = _flash_problem(dtype, device) if "flash" in (requested, paper) else (None, "")
    if requested == "flash":
        if problem:
            raise AttentionUnavailableError(
                f"{option} is 'flash', but {problem}, so {who} cannot run flash-attn here: "
                f"{remedy}, or set {option} to auto or sdpa"
            )
        impl, reason = "flash", "attn_impl: flash"
    elif requested == "sdpa":
        impl, reason = "sdpa", "attn_impl: sdpa"
    elif paper == "flash" and problem is None:
        impl, reason = "flash", "auto: flash-attn, as the paper"
    elif paper == "flash":
        impl, reason = "sdpa", f"auto: {problem}"
    else:
        impl, reason = "sdpa", "auto: SDPA, as the paper"
    record: dict[str, Any] = {
        "impl": impl,
        "requested": requested,
        "paper": paper,
        "reason": reason,
    }
    if impl == "flash":
        record["flash_attn"] = _flash_version()
    if impl == paper:
        log.info("%s: attention %s (%s)", who, impl, reason)
    else:
        log.warning(
            "%s: attention runs on %s, but the paper ran it on %s (%s); results can differ from "
            "the paper's by floating-point rounding",
            who,
            _KERNEL_NAMES[impl],
            _KERNEL_NAMES[paper],
            reason,
        )
    return record


def _flash_problem(dtype: torch.dtype, device: torch.device) -> tuple[str | None, str]:
    """(why flash-attn cannot run a model in `dtype` on `device`, what would fix it); the
    reason is None when it can run."""
    install = "install flash-attn (the paper used 2.7.4) for this torch and CUDA"
    try:
        importlib.import_module("flash_attn")
    except ModuleNotFoundError as err:
        if err.name == "flash_attn":
            return "flash-attn is not installed", install
        return f"flash-attn cannot be imported ({type(err).__name__}: {err})", install
    except Exception as err:  # a build for another torch or CUDA fails in many ways
        return f"flash-attn cannot be imported ({type(err).__name__}: {err})", install
    if device.type != "cuda":
        return f"the model runs on {device.type}, not a CUDA device", "run it on a CUDA GPU"
    if dtype not in (torch.float16, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        return (
            f"flash-attn runs in float16 or bfloat16 only, not {name}",
            "set the model's dtype to float16 or bfloat16",
        )
    return None, ""


def _flash_version() -> str | None:
    try:
        return importlib.metadata.version("flash-attn")
    except importlib.metadata.PackageNotFoundError:
        return getattr(importlib.import_module("flash_attn"), "__version__", None)


def load_tokenizer(model_dir: str | Path) -> Any:
    """The checkpoint's tokenizer (a transformers PreTrainedTokenizerBase).

    A tokenizer that cannot be loaded raises CheckpointError naming the file at fault (or the
    directory, when no single file is).
    """
    from transformers import AutoTokenizer

    model_dir = Path(model_dir)
    try:
        # The llada/dream configs name remote code in auto_map; the tokenizers never need it,
        # and an explicit False keeps transformers from asking on a terminal.
        return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    except Exception as err:
        raise CheckpointError(_tokenizer_problem(model_dir, err)) from err


def model_type_problem(cfg: dict[str, Any], family: str) -> str | None:
    """Why config.json `cfg` is not a checkpoint of `family` (None when it may be one).

    llada and dream need their model_type (or none, the hub code's default); ar (transformers)
    needs 'llama', the paper's baseline. The text completes "<path of config.json> ...".
    """
    found = cfg.get("model_type")
    if family in _MODEL_TYPES:
        expected = _MODEL_TYPES[family]
        if found is None or str(found).lower() == expected:
            return None
        return (
            f"has model_type {found!r}, but family {family!r} expects model_type {expected!r}: "
            "check the model's `family:` (or the checkpoint) in the config"
        )
    if found is None:
        return (
            f"has no model_type, which family {family!r} needs (transformers picks the "
            "architecture by it)"
        )
    owner = next((f for f, t in _MODEL_TYPES.items() if str(found).lower() == t), None)
    if owner is not None:
        return (
            f"has model_type {found!r} (a {owner} checkpoint), but family {family!r} expects "
            f"model_type {_AR_MODEL_TYPE!r} (LLaMA3, the paper's autoregressive baseline): "
            "check the model's `family:` (or the checkpoint) in the config"
        )
    if found != _AR_MODEL_TYPE:  # transformers reads it case-sensitively
        return (
            f"has model_type {found!r}, but family {family!r} expects model_type "
            f"{_AR_MODEL_TYPE!r} (LLaMA3, the paper's autoregressive baseline, run on "
            "transformers' LlamaForCausalLM with its RoPE patched in the LLaMA keys): check "
            "the checkpoint, or the model's `family:` in the config"
        )
    return None


# ------------------------------------------------------------------------------------ helpers


def _as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        name = str(dtype).removeprefix("torch.")
        out = getattr(torch, _DTYPE_ALIASES.get(name, name), None)
    if not isinstance(out, torch.dtype) or not out.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    return out


def _read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise CheckpointError(f"{path} does not exist") from err
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} cannot be read as JSON: {err}") from err
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path} is not a JSON object")
    return cfg


def _tokenizer_problem(model_dir: Path, err: Exception) -> str:
    """The message for a tokenizer that failed to load: the first unreadable file, if any."""
    reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    for name in _TOKENIZER_JSON:
        path = model_dir / name
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as bad:
            return f"tokenizer file {path} cannot be read as JSON: {bad}"
    path = model_dir / "tokenizer.json"
    if path.is_file():
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(path))
        except Exception as bad:  # tokenizers raises a bare Exception
            return f"tokenizer file {path} cannot be loaded by the tokenizers library: {bad}"
    present = sorted(p.name for p in model_dir.glob("tokenizer*")) if model_dir.is_dir() else []
    files = f" (tokenizer files: {', '.join(present)})" if present else " (no tokenizer files)"
    return f"the tokenizer in {model_dir} cannot be loaded{files}: {reason}"


def _shard_files(model_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """The safetensors files to load and the index's weight_map ({} for a single file)."""
    if (model_dir / SINGLE_WEIGHTS).is_file():
        # transformers prefers the single file when both layouts exist; so do we.
        return [model_dir / SINGLE_WEIGHTS], {}
    index_path = model_dir / INDEX_FILE
    if not index_path.is_file():
        for path in (index_path, model_dir / SINGLE_WEIGHTS):
            if dangling_link(path):  # a copied RoPE view whose original moved, say
                raise CheckpointError(f"no weights in {model_dir}: {dangling_link(path)}")
        raise CheckpointError(
            f"no weights in {model_dir}: expected {SINGLE_WEIGHTS} or {INDEX_FILE}"
        )
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{index_path} has no readable weight_map: {err}") from err
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index_path}: weight_map is not a non-empty JSON object")
    bad = sorted(
        f"{tensor} -> {shard!r}"
        for tensor, shard in weight_map.items()
        if not isinstance(shard, str)
        or not shard
        or Path(shard).is_absolute()
        or ".." in Path(shard).parts
    )
    if bad:
        raise CheckpointError(f"{index_path}: invalid shard names: {_summary(bad)}")
    shards = [model_dir / name for name in sorted(set(weight_map.values()))]
    gone = [dangling_link(p) for p in shards if dangling_link(p)]
    if gone:
        raise CheckpointError(f"shard(s) named in {INDEX_FILE}: {_summary(gone)}")
    absent = [p.name for p in shards if not p.is_file()]
    if absent:
        raise CheckpointError(f"shard(s) named in {INDEX_FILE} missing: {', '.join(absent)}")
    return shards, weight_map


def _summary(items: list[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > _SHOW else ""
    return ", ".join(items[:_SHOW]) + more


def _load_weights(
    model: nn.Module, model_dir: Path, dtype: torch.dtype, device: torch.device
) -> None:
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    shards, weight_map = _shard_files(model_dir)

    # Pass 1, headers only: where each tensor is and its shape; refuse before reading any data.
    found: dict[str, tuple[Path, tuple[int, ...]]] = {}
    duplicates: list[str] = []
    for shard in shards:
        try:
            with safe_open(shard, framework="pt") as f:
                for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                    if name in found:
                        duplicates.append(f"{name} ({found[name][0].name} and {shard.name})")
                    found[name] = (shard, tuple(f.get_slice(name).get_shape()))
        except _READ_ERRORS as err:
            raise _read_error(shard, err) from err
    problems = []
    missing = sorted(set(expected) - set(found))
    if missing:
        problems.append(f"missing tensors: {_summary(missing)}")
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        problems.append(f"unexpected tensors: {_summary(unexpected)}")
    mismatched = [
        f"{name} {list(found[name][1])} (model expects {list(shape)})"
        for name, shape in sorted(expected.items())
        if name in found and found[name][1] != shape
    ]
    if mismatched:
        problems.append(f"shape mismatches: {_summary(mismatched)}")
    if duplicates:
        problems.append(f"tensors in two shards: {_summary(duplicates)}")
    misplaced = sorted(n for n, s in weight_map.items() if n not in found or found[n][0].name != s)
    if misplaced:
        problems.append(f"tensors not in the shard {INDEX_FILE} names: {_summary(misplaced)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {model_dir} does not fit the model: " + "; ".join(problems)
        )

    # Pass 2: one tensor at a time, straight to the target device and dtype, replacing the meta
    # placeholder in place (no second copy of the model, no init of weights about to be replaced).
    # Only the reads are wrapped: an error moving a tensor (out of device memory) is no file's.
    for shard in shards:
        try:
            handle = safe_open(shard, framework="pt")
        except _READ_ERRORS as err:
            raise _read_error(shard, err) from err
        with handle as f:
            for name in f.keys():  # noqa: SIM118
                module_name, _, leaf = name.rpartition(".")
                module = model.get_submodule(module_name)
                try:
                    tensor = f.get_tensor(name)
                except _READ_ERRORS as err:
                    raise _read_error(shard, err, name) from err
                tensor = tensor.to(device=device, dtype=dtype)
                module._parameters[leaf] = nn.Parameter(tensor, requires_grad=False)


def _read_error(shard: Path, err: Exception, tensor: str | None = None) -> CheckpointError:
    """A CheckpointError naming the shard (and tensor) a read failed on."""
    what = f"tensor {tensor} of " if tensor else ""
    return CheckpointError(
        f"cannot read {what}{shard} ({type(err).__name__}: {err}); the file is truncated or "
        "corrupt: download it again (the download rule checks it against the hub)"
    )


def _check_shards_readable(model_dir: Path) -> None:
    """Open every shard's header (no tensor data) so a broken file is named before
    transformers reads it."""
    shards, _ = _shard_files(model_dir)
    for shard in shards:
        try:
            with safe_open(shard, framework="pt") as f:
                for name in f.keys():  # noqa: SIM118
                    f.get_slice(name).get_shape()
        except _READ_ERRORS as err:
            raise _read_error(shard, err) from err


def _describe(item: Any) -> str:
    # transformers reports a size mismatch as (name, checkpoint shape, model shape).
    if isinstance(item, tuple) and len(item) == 3:
        name, found, wanted = item
        return f"{name} {list(found)} (model expects {list(wanted)})"
    return str(item)


def _load_ar(
    model_dir: Path, dtype: torch.dtype, device: torch.device, attn_implementation: str = "sdpa"
) -> nn.Module:
    from transformers import AutoModelForCausalLM

    _check_shards_readable(model_dir)
    # The NTK patch already wrote rope_parameters.rope_theta into config.json. No device_map:
    # that needs accelerate; the model is loaded on the CPU and moved.
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            model_dir,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=False,
            output_loading_info=True,
            # Report size mismatches in `info` (raised below as CheckpointError) instead of a
            # bare RuntimeError; the model is discarded either way.
            ignore_mismatched_sizes=True,
        )
    except (*_READ_ERRORS, KeyError) as err:
        raise CheckpointError(
            f"transformers cannot load the checkpoint in {model_dir}: {type(err).__name__}: {err}"
        ) from err
    problems = []
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        items = sorted(_describe(x) for x in info.get(key) or [])
        if items:
            problems.append(f"{key.replace('_', ' ')}: {_summary(items)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {model_dir} does not fit the model: " + "; ".join(problems)
        )
    return model.to(device).eval().requires_grad_(False)
