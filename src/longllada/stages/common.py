"""What every GPU stage does first: pick the device and load the checkpoint a run names."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from longllada import checkpoints
from longllada.config import Model, Run
from longllada.files import read_json
from longllada.models import load_model, load_tokenizer

log = logging.getLogger(__name__)


class NonFiniteError(ArithmeticError):
    """A NaN or inf where a number is expected; the message names the model and the sample."""


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def load_run_model(
    model: Model,
    checkpoint_file: str | Path,
    dtype: str | None = None,
    benchmark: str | None = None,
) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """(network, tokenizer, provenance parts) for the checkpoint file of a run.

    The model part names the attention kernel that runs (`model.attention`: impl, requested,
    paper, reason, flash-attn version), so every result that records it says which ran. A
    `flash` that cannot run here stops the job before any weight is read. `benchmark`: the run's,
    when the caller passes it: "auto" then means the paper's kernel for that benchmark (LLaDA's
    perplexity ran SDPA), else the family's benchmark kernel.
    """
    model_dir = checkpoints.model_dir(checkpoint_file)
    device = pick_device()
    dtype = dtype or model.dtype
    log.info("loading %s (%s, %s) from %s on %s", model.key, model.family, dtype, model_dir, device)
    net = load_model(
        model_dir,
        model.family,
        dtype=dtype,
        device=device,
        attn_impl=model.attn_impl,
        key=model.key,
        benchmark=benchmark,
    )
    tokenizer = load_tokenizer(model_dir)
    attention = net.attention_record
    return (
        net,
        tokenizer,
        {
            "model": {**_model_record(model, checkpoint_file), "attention": attention},
            "rope": _rope(checkpoint_file),
            "dtype": dtype,
            "attention": attention,
        },
    )


def _model_record(model: Model, checkpoint_file: str | Path) -> dict[str, Any]:
    # A patched checkpoint sits in <model>/ntk<λ>/, next to its original's download.json.
    checkpoint_file = Path(checkpoint_file)
    manifest = (
        checkpoint_file
        if checkpoint_file.name == "download.json"
        else checkpoint_file.parent.parent / "download.json"
    )
    return checkpoints.model_record(model, read_json(manifest) if manifest.exists() else None)


def _rope(checkpoint_file: str | Path) -> dict[str, Any]:
    checkpoint_file = Path(checkpoint_file)
    if checkpoint_file.name != "rope_patch.json":
        return {"ntk_lambda": 1.0}
    rec = read_json(checkpoint_file)
    keys = ("ntk_lambda", "lambda_raw", "old_theta", "new_theta", "d_crit", "t_target", "t_extra")
    return {k: rec.get(k) for k in keys}


def run_settings(run: Run, settings: dict[str, Any] | None) -> dict[str, Any]:
    return {"setting": run.setting, "sampler": dict(run.sampler), "benchmark": settings or {}}
