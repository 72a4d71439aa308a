"""NTK scaling of RoPE: the scaling law that picks λ, and the patched checkpoint.

The scaling law of RoPE extrapolation (Liu et al. 2023), as the LongLLaDA paper applies it:

    d_crit = 2 * ceil((d / 2) * log_b(T_train / 2π))
    λ      = ceil(b^-1 * (T_target / 2π) ^ (d / d_crit))
    T_extra = 2π (λ b) ^ (d_crit / d)        (the length the scaled base can reach)

The "diffusion_aware" variant (UltraLLaDA, arXiv 2510.10481) puts 2*T_train and 2*T_target into
the same formulas, because a bidirectional model sees relative positions in [1-T, T-1].
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

from longllada.files import project_path, write_json

VARIANTS = ("paper", "diffusion_aware")


@dataclass(frozen=True)
class NtkScaling:
    """One application of the scaling law, with everything needed to check it by hand."""

    base: float
    head_dim: int
    t_train: int
    t_target: int | None
    variant: str
    d_crit: int
    lambda_raw: float  # before the ceiling; 1.0 for an explicit λ = 1
    ntk_lambda: float
    new_theta: float
    t_extra: float

    def to_dict(self) -> dict:
        return asdict(self)


def _length_factor(variant: str) -> int:
    if variant not in VARIANTS:
        raise ValueError(f"unknown NTK variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return 2 if variant == "diffusion_aware" else 1


def critical_dim(base: float, head_dim: int, t_train: int, variant: str = "paper") -> int:
    """Number of head dimensions whose RoPE period fits in the training length."""
    t = t_train * _length_factor(variant)
    return 2 * math.ceil((head_dim / 2) * math.log(t / (2 * math.pi), base))


def extrapolation_limit(base: float, head_dim: int, d_crit: int, ntk_lambda: float) -> float:
    """T_extra: the context length up to which a base of λ·b keeps the critical dims in range."""
    return 2 * math.pi * (ntk_lambda * base) ** (d_crit / head_dim)


def scaling_for_target(
    base: float, head_dim: int, t_train: int, t_target: int, variant: str = "paper"
) -> NtkScaling:
    """λ from the scaling law for a target context length (never below 1)."""
    if t_target <= 0 or t_train <= 0:
        raise ValueError(f"lengths must be positive (T_train={t_train}, T_target={t_target})")
    factor = _length_factor(variant)
    d_crit = critical_dim(base, head_dim, t_train, variant)
    raw = (t_target * factor / (2 * math.pi)) ** (head_dim / d_crit) / base
    lam = float(max(1, math.ceil(raw)))
    return NtkScaling(
        base=base,
        head_dim=head_dim,
        t_train=t_train,
        t_target=t_target,
        variant=variant,
        d_crit=d_crit,
        lambda_raw=raw,
        ntk_lambda=lam,
        new_theta=base * lam,
        t_extra=extrapolation_limit(base, head_dim, d_crit, lam),
    )


def scaling_for_lambda(
    base: float, head_dim: int, t_train: int, ntk_lambda: float, variant: str = "paper"
) -> NtkScaling:
    """An explicit λ (as the paper's tables name them), with its d_crit and T_extra."""
    if ntk_lambda < 1:
        raise ValueError(f"NTK λ must be >= 1, got {ntk_lambda}")
    d_crit = critical_dim(base, head_dim, t_train, variant)
    return NtkScaling(
        base=base,
        head_dim=head_dim,
        t_train=t_train,
        t_target=None,
        variant=variant,
        d_crit=d_crit,
        lambda_raw=float(ntk_lambda),
        ntk_lambda=float(ntk_lambda),
        new_theta=base * ntk_lambda,
        t_extra=extrapolation_limit(base, head_dim, d_crit, ntk_lambda),
    )


LAMBDA_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


def format_lambda(ntk_lambda: float) -> str:
    """λ as it appears in run ids and paths: 4 -> '4', 2.5 -> '2.5', never an exponent.

    The text round-trips: ``float(format_lambda(x)) == x`` for every finite x >= 0 (integers as
    digits, others as the shortest repr written out positionally), so a path's λ finds its run
    and its patch again (`parse_lambda`, the rope_patch rule's ``float(w.ntk)``), and it matches
    the ``[0-9.]+`` wildcard. Sampler numbers in run ids are written the same way.
    """
    value = float(ntk_lambda)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"cannot write {ntk_lambda!r} into a run id (need a finite number >= 0)")
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    if "e" in text:  # below 1e-4: repr uses an exponent; write the same digits positionally
        text = format(Decimal(text), "f")
    return text


def parse_lambda(text: str) -> float:
    """The λ a run id or path names (the inverse of `format_lambda`)."""
    if not LAMBDA_TEXT.fullmatch(text):
        raise ValueError(f"{text!r} is not a λ as run ids write it (digits, optionally .digits)")
    return float(text)


# --- the checkpoint patch -------------------------------------------------------------------


def read_rope(config: dict) -> tuple[float, int]:
    """(rope_theta, head_dim) of a hub config.json of any supported family."""
    params = config.get("rope_parameters") or {}
    theta = params.get("rope_theta", config.get("rope_theta"))
    if theta is None:
        raise ValueError("config.json has no rope_theta (neither top level nor rope_parameters)")
    if config.get("model_type") == "llada":
        head_dim = config["d_model"] // config["n_heads"]
    else:
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    return float(theta), int(head_dim)


def patched_config(config: dict, new_theta: float) -> dict:
    """config.json with rope_theta replaced wherever a loader reads it.

    LLaDA, Dream and the hub's LLaMA3 config hold a top-level key; transformers 5 writes (and
    reads) LLaMA's theta in `rope_parameters`, converting a legacy top-level key into it. Each
    key present is replaced; none is added, so a loader never sees two disagreeing values.
    """
    out = json.loads(json.dumps(config))
    if "rope_theta" in out:
        out["rope_theta"] = new_theta
    if isinstance(out.get("rope_parameters"), dict) and "rope_theta" in out["rope_parameters"]:
        out["rope_parameters"]["rope_theta"] = new_theta
    return out


def patch_checkpoint(
    snapshot_dir: Path, out_dir: Path, scaling: NtkScaling, source: dict | None = None
) -> dict:
    """Write a λ-scaled view of a checkpoint: links to every original file, a new config.json.

    The shards are never copied: an 8B checkpoint is 16 GB and one model has up to five λs.
    The links are relative, so a copied or moved project (`cp -a`) links to its own copy of the
    checkpoint; only a view inside the project (the working directory) of a checkpoint outside
    it (a `local_dir` elsewhere) links to it by its absolute path, which a copy still finds.
    Returns the record for rope_patch.json, which the caller writes last (it marks completion).
    """
    snapshot_dir, out_dir = Path(snapshot_dir).resolve(), Path(out_dir)
    config = json.loads((snapshot_dir / "config.json").read_text())
    old_theta, head_dim = read_rope(config)
    if not math.isclose(old_theta, scaling.base) or head_dim != scaling.head_dim:
        raise ValueError(
            f"checkpoint {snapshot_dir} has rope_theta={old_theta:g}, head_dim={head_dim}, but the "
            f"config declares rope_theta={scaling.base:g}, head_dim={scaling.head_dim}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sorted(snapshot_dir.iterdir()):
        if src.name == "config.json" or src.name.startswith("."):
            continue
        link = out_dir / src.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(_link_target(src, out_dir))
    new = patched_config(config, scaling.new_theta)
    write_json(out_dir / "config.json", new)
    return {
        **scaling.to_dict(),
        "old_theta": old_theta,
        "snapshot_dir": project_path(snapshot_dir),
        "source": source or {},
    }


def _link_target(src: Path, out_dir: Path) -> str:
    """What a view's link to `src` holds (see `patch_checkpoint`)."""
    if _in_project(out_dir) and not _in_project(src):
        return str(src)
    return os.path.relpath(src, out_dir.resolve())


def _in_project(path: Path) -> bool:
    return not os.path.isabs(project_path(path))
