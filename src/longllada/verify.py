"""The `verify` rule: our model classes against the checkpoint's own hub code, logit by logit.

The reference side runs in a separate environment pinned to the paper's transformers 4.46.3
(envs/hubcode-requirements.txt; `.venv-hubcode` from ./quickstart.sh), where the LLaDA and Dream
hub code (trust_remote_code) loads: `verify_reference.py` is run there as a script on the same
checkpoint directory, the same dtype and device, and the same random token sequences (batch 1, no
attention mask; ~30% mask tokens for the diffusion models). Then our class (longllada.models)
loads the same weights in this process, and the two logits tensors are compared: max and mean
absolute difference and argmax agreement, against configurable thresholds.

A pass writes `verify.json` (the verdict, the thresholds, the reference environment's versions,
provenance). A failure writes the same verdict to `verify.failed.json` next to it, logs it and
raises VerifyError, so no `verify.json` exists and the jobs that require one (config
`verify.required`) do not run.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

from longllada import checkpoints, provenance
from longllada.child_env import clean_env
from longllada.config import Model
from longllada.files import read_json, write_json

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULTS",
    "PAPER_TRANSFORMERS",
    "REFERENCE_SCRIPT",
    "VerifyError",
    "compare",
    "make_inputs",
    "run_reference",
    "run_verify",
    "settings",
]

REFERENCE_SCRIPT = Path(__file__).with_name("verify_reference.py")
PAPER_TRANSFORMERS = "4.46.3"  # envs/hubcode-requirements.txt
MASK_FRACTION = 0.3
# The rule's settings when config `verify:` leaves them out (schema: workflow/schemas).
DEFAULTS: dict[str, Any] = {
    "python": ".venv-hubcode/bin/python",
    "max_abs_diff": 1e-3,
    "min_argmax_agreement": 0.999,
    "dtype": "float32",
    "n_seqs": 2,
    "length": 64,
    "timeout_minutes": 60,
}
_HOW_TO_CREATE = (
    "create it with ./quickstart.sh test (or: python3 -m venv .venv-hubcode && "
    ".venv-hubcode/bin/pip install -r envs/hubcode-requirements.txt; conda: conda env create "
    "-f envs/hubcode.yaml -p .venv-hubcode), or point config verify.python at its interpreter"
)
_STDERR_LINES = 40  # lines of the reference's stderr quoted in an error message


class VerifyError(RuntimeError):
    """The equivalence check could not run, or ran and failed (the message says which)."""


def settings(verify_config: dict[str, Any] | None) -> dict[str, Any]:
    """The rule's settings: config `verify:` over DEFAULTS ("required" is the DAG's business)."""
    given = {k: v for k, v in (verify_config or {}).items() if k != "required"}
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown verify setting(s): {', '.join(unknown)}")
    return DEFAULTS | given


# ------------------------------------------------------------------------------- inputs, compare


def make_inputs(
    vocab_size: int,
    mask_token_id: int | None,
    n_seqs: int = 2,
    length: int = 64,
    seed: int = 0,
    mask_fraction: float = MASK_FRACTION,
) -> torch.Tensor:
    """[n_seqs, length] random token ids (int64); with a mask id, ~mask_fraction of them masked.

    Drawn from one CPU generator, so the same arguments give the same tensor everywhere.
    """
    if vocab_size < 1 or n_seqs < 1 or length < 1:
        raise ValueError("vocab_size, n_seqs and length must be positive")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (n_seqs, length), generator=gen, dtype=torch.int64)
    if mask_token_id is not None:
        masked = torch.rand((n_seqs, length), generator=gen) < mask_fraction
        ids[masked] = mask_token_id
    return ids


def _number(x: float) -> float | None:
    # JSON has no NaN / inf.
    return x if math.isfinite(x) else None


def compare(
    native: torch.Tensor,
    reference: torch.Tensor,
    max_abs_diff: float = DEFAULTS["max_abs_diff"],
    min_argmax_agreement: float = DEFAULTS["min_argmax_agreement"],
) -> dict[str, Any]:
    """Compare two logits tensors [..., V] (e.g. [N, L, V]).

    Returns max_abs_diff, mean_abs_diff, argmax_agreement (fraction of rows whose argmax is the
    same), nonfinite (entries that are NaN/inf in either), per-sequence figures for 3-D inputs,
    and passed: all finite, max_abs_diff <= the threshold, agreement >= its threshold. A shape
    mismatch does not raise: it is a failed verdict with a `problem`.
    """
    out: dict[str, Any] = {
        "shape": list(native.shape),
        "max_abs_diff": None,
        "mean_abs_diff": None,
        "argmax_agreement": None,
        "nonfinite": None,
        "passed": False,
    }
    if native.shape != reference.shape:
        out["problem"] = (
            f"shape mismatch: native {list(native.shape)}, reference {list(reference.shape)}"
        )
        return out
    if native.numel() == 0:
        out["problem"] = "empty logits"
        return out
    a, b = native.detach().cpu().double(), reference.detach().cpu().double()
    nonfinite = int((~(torch.isfinite(a) & torch.isfinite(b))).sum())
    diff = (a - b).abs()
    agree = a.argmax(-1) == b.argmax(-1)
    out["nonfinite"] = nonfinite
    out["max_abs_diff"] = _number(float(diff.max()))
    out["mean_abs_diff"] = _number(float(diff.mean()))
    out["argmax_agreement"] = float(agree.double().mean())
    if a.dim() == 3:
        out["per_sequence"] = [
            {
                "max_abs_diff": _number(float(diff[i].max())),
                "argmax_agreement": float(agree[i].double().mean()),
            }
            for i in range(a.shape[0])
        ]
    if nonfinite:
        out["problem"] = f"{nonfinite} non-finite logits"
    out["passed"] = bool(
        nonfinite == 0
        and out["max_abs_diff"] is not None
        and out["max_abs_diff"] <= max_abs_diff
        and out["argmax_agreement"] >= min_argmax_agreement
    )
    return out


# ---------------------------------------------------------------------------------- the two sides


def _input_space(model_dir: Path, family: str) -> tuple[int, int | None]:
    """(vocab size, mask token id or None) from config.json, before any weights are read."""
    from longllada.models.dream import DreamConfig
    from longllada.models.llada import LLaDAConfig

    cfg = read_json(model_dir / "config.json")
    if family == "llada":
        c = LLaDAConfig.from_hub(cfg)
        return c.vocab_size, c.mask_token_id
    if family == "dream":
        d = DreamConfig.from_hub(cfg)
        return d.vocab_size, d.mask_token_id
    return int(cfg["vocab_size"]), None


def _resolve_python(python: str) -> str:
    """The interpreter as given (a path, not resolved: a venv's python is a symlink whose target
    would lose the venv), or looked up on PATH when it is a bare name."""
    if os.sep in python or (os.altsep and os.altsep in python):
        if not Path(python).is_file():
            raise VerifyError(
                f"the hub-code environment's interpreter {python} does not exist: {_HOW_TO_CREATE}"
            )
        return os.path.abspath(python)
    found = shutil.which(python)
    if found is None:
        raise VerifyError(f"no {python!r} on PATH for the hub-code environment: {_HOW_TO_CREATE}")
    return found


def _env_versions(python: str) -> str:
    """'transformers X, torch Y' of an interpreter, or why they cannot be read (for messages)."""
    code = (
        "import importlib.metadata as m\n"
        "for p in ('transformers', 'torch'):\n"
        "    try: print(p, m.version(p))\n"
        "    except m.PackageNotFoundError: print(p, 'not installed')\n"
    )
    try:
        res = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return f"cannot run it: {err}"
    if res.returncode:
        return "cannot read its package versions"
    return ", ".join(res.stdout.split("\n")[:2]).strip(", ")


def run_reference(
    python: str,
    model_dir: Path,
    family: str,
    ids: torch.Tensor,
    dtype: str,
    device: str,
    timeout: float,
    workdir: Path,
) -> tuple[dict[str, Any], torch.Tensor]:
    """Run verify_reference.py with `python` on `ids`; return its meta and logits [N, L, V]."""
    exe = _resolve_python(python)
    workdir.mkdir(parents=True, exist_ok=True)
    inputs, out = workdir / "inputs.pt", workdir / "reference.pt"
    torch.save(ids.cpu(), inputs)
    # A private copy of the script: its directory goes first on the child's sys.path, and this
    # package's directory has modules (config, files, models, ...) that must not shadow anything.
    script = workdir / REFERENCE_SCRIPT.name
    shutil.copyfile(REFERENCE_SCRIPT, script)
    cmd = [
        exe,
        str(script),
        "--model-dir",
        str(Path(model_dir).absolute()),
        "--family",
        family,
        "--inputs",
        str(inputs),
        "--out",
        str(out),
        "--dtype",
        dtype,
        "--device",
        device,
    ]
    # No PYTHONPATH (the reference sees only its own environment) and no tokens (it runs the
    # checkpoint's downloaded code). The hub code is copied into a private modules cache (no
    # clash between concurrent jobs, no write to $HOME on a compute node); the checkpoint is
    # local, so no network either.
    env = clean_env(
        HF_MODULES_CACHE=str(workdir / "hf_modules"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    where = f"the hub-code environment ({python})"
    log.info("reference: %s", " ".join(cmd))
    try:
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise VerifyError(f"the reference run in {where} timed out after {timeout:.0f} s") from err
    except OSError as err:
        raise VerifyError(f"cannot start the reference run in {where}: {err}") from err
    if res.stderr.strip():
        log.log(
            logging.ERROR if res.returncode else logging.INFO, "reference stderr:\n%s", res.stderr
        )
    if res.returncode:
        lines = res.stderr.strip().splitlines()
        reason = next(
            (ln for ln in reversed(lines) if ln.startswith("verify_reference: ")),
            "\n".join(lines[-_STDERR_LINES:]) or "(no output)",
        )
        raise VerifyError(
            f"the reference run in the hub-code environment ({python}; {_env_versions(exe)}) "
            f"failed with exit status {res.returncode}: {reason.removeprefix('verify_reference: ')}"
        )
    try:
        saved = torch.load(out, map_location="cpu", weights_only=True)
        meta, logits = saved["meta"], saved["logits"]
    except Exception as err:  # any unreadable or unexpected file
        raise VerifyError(f"the reference run in {where} left no readable {out}: {err}") from err
    return meta, logits


def native_logits(
    model_dir: Path, family: str, ids: torch.Tensor, dtype: str, device: str
) -> tuple[dict[str, Any], torch.Tensor]:
    """Our class on `ids`, one row at a time as the reference does; (meta, logits [N, L, V])."""
    from longllada.models import load_model

    watch = provenance.Stopwatch()
    model = load_model(model_dir, family, dtype=dtype, device=device)
    load_seconds = watch.elapsed()
    rows = []
    with torch.no_grad():
        for row in ids:
            out = model(row[None].to(device))
            out = out.logits if hasattr(out, "logits") else out
            rows.append(out[0].float().cpu())
    meta = {
        "model_class": type(model).__name__,
        "model_module": type(model).__module__,
        "attn_impl": getattr(model, "attn_impl", None),
        "load_seconds": round(load_seconds, 3),
        "forward_seconds": round(watch.elapsed() - load_seconds, 3),
    }
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return meta, torch.stack(rows)


# --------------------------------------------------------------------------------------- the job


def failed_path(out_path: str | Path) -> Path:
    """Where a failing verdict goes: verify.json -> verify.failed.json."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}.failed{out_path.suffix}")


def run_verify(
    model: Model,
    checkpoint_file: str | Path,
    python: str = DEFAULTS["python"],
    out_path: str | Path = "verify.json",
    max_abs_diff: float = DEFAULTS["max_abs_diff"],
    min_argmax_agreement: float = DEFAULTS["min_argmax_agreement"],
    dtype: str = DEFAULTS["dtype"],
    device: str | None = None,
    timeout: float = DEFAULTS["timeout_minutes"] * 60,
    n_seqs: int = DEFAULTS["n_seqs"],
    length: int = DEFAULTS["length"],
    seed: int = 0,
) -> dict[str, Any]:
    """Check `model`'s checkpoint (download.json or rope_patch.json) and write the verdict.

    Returns the verdict when it passes (written to out_path). Otherwise writes it to
    verify.failed.json next to out_path and raises VerifyError; so does a reference run that
    cannot start or fails (its stderr goes to the log).
    """
    watch = provenance.Stopwatch()
    checkpoint_file = Path(checkpoint_file)
    out_path = Path(out_path)
    failed = failed_path(out_path)
    # Stale verdicts of an earlier run must not outlive this one.
    out_path.unlink(missing_ok=True)
    failed.unlink(missing_ok=True)
    model_dir = checkpoints.model_dir(checkpoint_file)
    manifest = read_json(checkpoint_file) if checkpoint_file.name == "download.json" else None
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    vocab_size, mask_id = _input_space(model_dir, model.family)
    ids = make_inputs(vocab_size, mask_id, n_seqs=n_seqs, length=length, seed=seed)
    log.info(
        "verify %s (%s) in %s: %d x %d tokens, %s on %s, reference python %s",
        model.key,
        model.family,
        model_dir,
        n_seqs,
        length,
        dtype,
        device,
        python,
    )
    with tempfile.TemporaryDirectory(prefix="longllada-verify-") as tmp:
        ref_meta, ref_logits = run_reference(
            python, model_dir, model.family, ids, dtype, device, timeout, Path(tmp)
        )
    log.info(
        "reference: %s.%s (transformers %s, torch %s), %.1f s",
        ref_meta.get("model_module"),
        ref_meta.get("model_class"),
        ref_meta.get("transformers_version"),
        ref_meta.get("torch_version"),
        ref_meta.get("load_seconds", 0) + ref_meta.get("forward_seconds", 0),
    )
    if ref_meta.get("transformers_version") != PAPER_TRANSFORMERS:
        log.warning(
            "the reference ran with transformers %s, not the paper's %s (%s)",
            ref_meta.get("transformers_version"),
            PAPER_TRANSFORMERS,
            "envs/hubcode-requirements.txt",
        )
    nat_meta, nat_logits = native_logits(model_dir, model.family, ids, dtype, device)
    comparison = compare(nat_logits, ref_logits, max_abs_diff, min_argmax_agreement)

    thresholds = {"max_abs_diff": max_abs_diff, "min_argmax_agreement": min_argmax_agreement}
    verdict = {
        "passed": comparison["passed"],
        "model_key": model.key,
        "family": model.family,
        "checkpoint_file": str(checkpoint_file),
        "model_dir": str(model_dir),
        "comparison": comparison,
        "thresholds": thresholds,
        "inputs": {
            "n_seqs": n_seqs,
            "length": length,
            "seed": seed,
            "vocab_size": vocab_size,
            "mask_token_id": mask_id,
            "mask_fraction": MASK_FRACTION if mask_id is not None else 0.0,
            "sha256": hashlib.sha256(ids.numpy().tobytes()).hexdigest(),
        },
        "dtype": dtype,
        "device": device,
        "reference": {
            "python": python,
            "paper_transformers": PAPER_TRANSFORMERS,
            "is_paper_version": ref_meta.get("transformers_version") == PAPER_TRANSFORMERS,
            **ref_meta,
        },
        "native": nat_meta,
        "provenance": provenance.record(
            "verify",
            watch=watch,
            model=checkpoints.model_record(model, manifest),
            settings={**thresholds, "dtype": dtype, "n_seqs": n_seqs, "length": length},
            seed=seed,
        ),
    }
    summary = (
        f"max |diff| {_fmt(comparison['max_abs_diff'])} (limit {max_abs_diff:g}), "
        f"mean |diff| {_fmt(comparison['mean_abs_diff'])}, argmax agreement "
        f"{_fmt(comparison['argmax_agreement'])} (at least {min_argmax_agreement:g})"
    )
    if comparison.get("problem"):
        summary += f"; {comparison['problem']}"
    if not verdict["passed"]:
        write_json(failed, verdict)
        log.error("verify %s FAILED: %s; verdict in %s", model.key, summary, failed)
        raise VerifyError(
            f"{model.key}: our {model.family} class does not match the checkpoint's hub code "
            f"({summary}); verdict in {failed}"
        )
    write_json(out_path, verdict)
    log.info("verify %s passed: %s", model.key, summary)
    return verdict


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"
