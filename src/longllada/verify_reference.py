"""Reference side of the `verify` rule: logits from a checkpoint's *own* hub code.

Runs in the hub-code environment (envs/hubcode-requirements.txt: torch + transformers 4.46.3, the
paper's version), never in the pipeline's: it imports nothing from longllada, and longllada never
imports it; longllada.verify runs it as a script and compares what it writes with our classes.

    python verify_reference.py --model-dir D --family llada|dream|ar --inputs in.pt --out out.pt
        [--dtype float32] [--device cpu]

LLaDA and Dream load through config.json's auto_map (AutoModel, trust_remote_code: the
checkpoint's modeling_*.py); "ar" loads transformers' own AutoModelForCausalLM (no remote code).
Each row of the [N, L] input tensor is run alone (batch 1, no attention mask, no cache), as the
paper ran its models. `out` gets {"logits": [N, L, V] float32 on the CPU, "meta": {...}}.
Exit status 0 on success, 2 on a usage or checkpoint problem, 1 on anything else; the last line
of stderr then says what went wrong, starting with "verify_reference: " (after any traceback).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

FAMILIES = ("llada", "dream", "ar")
DTYPES = ("float32", "float16", "bfloat16")


class UsageError(Exception):
    """A problem with the arguments or the checkpoint directory (exit status 2)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", required=True, type=Path)
    p.add_argument("--family", required=True, choices=FAMILIES)
    p.add_argument("--inputs", required=True, type=Path, help="torch file: [N, L] int64 tensor")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--dtype", default="float32", choices=DTYPES)
    p.add_argument("--device", default="cpu")
    return p.parse_args(argv)


def check_model_dir(model_dir: Path, family: str) -> dict:
    """config.json, and for llada/dream the modeling file its auto_map names; else UsageError."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise UsageError(f"{config_path} does not exist")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise UsageError(f"{config_path} is not valid JSON: {err}") from err
    if family == "ar":
        return config
    target = (config.get("auto_map") or {}).get("AutoModel")
    if not target:
        raise UsageError(
            f"{config_path} has no auto_map.AutoModel: the {family} hub code cannot be found"
        )
    if isinstance(target, (list, tuple)):  # ["module.Class", "tokenizer class"] forms
        target = target[0]
    module = str(target).split("--")[-1].rsplit(".", 1)[0]
    if not (model_dir / f"{module}.py").is_file():
        raise UsageError(
            f"{model_dir} lacks {module}.py, which config.json's auto_map.AutoModel names "
            f"({target}); download the checkpoint with its *.py files"
        )
    return config


def load_reference(model_dir: Path, family: str, config: dict, dtype, device: str):
    import transformers

    major = int(transformers.__version__.split(".")[0])
    # transformers 5 renamed torch_dtype to dtype; the paper's 4.46.3 knows only torch_dtype.
    kwargs = {"dtype" if major >= 5 else "torch_dtype": dtype}
    if family == "ar":
        from transformers import AutoConfig, AutoModelForCausalLM

        hf_config = AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
        rope_params = config.get("rope_parameters") or {}
        if major < 5 and "rope_theta" not in config and "rope_theta" in rope_params:
            # A config written by transformers 5 keeps the base only in rope_parameters, which
            # transformers 4 does not read (it would fall back to its default base).
            if rope_params.get("rope_type", "default") != "default":
                raise UsageError(
                    f"config.json rope_parameters {rope_params} cannot be expressed for "
                    f"transformers {transformers.__version__}"
                )
            hf_config.rope_theta = float(rope_params["rope_theta"])
        model = AutoModelForCausalLM.from_pretrained(
            model_dir, config=hf_config, trust_remote_code=False, **kwargs
        )
    else:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(model_dir, trust_remote_code=True, **kwargs)
    return model.to(device).eval()


def run(args: argparse.Namespace) -> dict:
    if not args.model_dir.is_dir():
        raise UsageError(f"model directory {args.model_dir} does not exist")
    config = check_model_dir(args.model_dir, args.family)
    if not args.inputs.is_file():
        raise UsageError(f"inputs file {args.inputs} does not exist")

    import torch
    import transformers

    ids = torch.load(args.inputs, map_location="cpu", weights_only=True)
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.is_floating_point():
        raise UsageError(f"{args.inputs} must hold an [N, L] integer tensor")
    dtype = getattr(torch, args.dtype)
    transformers.utils.logging.disable_progress_bar()  # no shard bars in the job's log
    t0 = time.perf_counter()
    model = load_reference(args.model_dir, args.family, config, dtype, args.device)
    load_seconds = time.perf_counter() - t0

    params = inspect.signature(model.forward).parameters
    extra = {"use_cache": False} if "use_cache" in params else {}
    logits = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for row in ids:
            out = model(row[None].to(args.device), **extra)
            out = out.logits if hasattr(out, "logits") else out[0]
            logits.append(out[0].float().cpu())
    meta = {
        "family": args.family,
        "dtype": args.dtype,
        "device": args.device,
        "model_class": type(model).__name__,
        "model_module": type(model).__module__,
        "python_version": sys.version.split()[0],
        "executable": sys.executable,
        "torch_version": str(torch.__version__),
        "transformers_version": str(transformers.__version__),
        "load_seconds": round(load_seconds, 3),
        "forward_seconds": round(time.perf_counter() - t0, 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"logits": torch.stack(logits), "meta": meta}, args.out)
    return meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        meta = run(args)
    except UsageError as err:
        print(f"verify_reference: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # the traceback, then one clear line last for the caller
        import traceback

        traceback.print_exc()
        print(f"verify_reference: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(meta, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
