"""The checkpoint stage: a model entry of the config -> a verified directory on disk.

Three sources, one result: a hub snapshot (pinned revision), a local directory, or a tiny
demo checkpoint built in the hub layout. Each ends in `download.json`, the manifest every later
job reads to find the weights; λ-scaled views of it end in `ntk<λ>/rope_patch.json`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

from longllada import demo, hub, provenance, rope
from longllada.config import ConfigError, Model
from longllada.files import read_json, write_json

log = logging.getLogger(__name__)


def build_demo(model: Model, out_dir: str | Path) -> Path:
    """Build the tiny checkpoint a demo model entry asks for, sized by its preset."""
    family = "llama" if model.family == "ar" else model.family
    sizes = dict(demo.PRESETS[model.demo["preset"]][family])
    if sizes["hidden"] // sizes["heads"] != model.head_dim:
        raise ConfigError(
            f"models.{model.key}.head_dim: {model.head_dim}, but the {model.demo['preset']!r} "
            f"preset has head dim {sizes['hidden'] // sizes['heads']}"
        )
    sizes["max_position"] = model.t_train
    log.info("building demo checkpoint %s (%s) in %s", model.key, family, out_dir)
    return demo.build_demo_checkpoint(
        family,
        Path(out_dir),
        seed=model.demo["seed"],
        variant=model.variant,
        rope_theta=model.rope_theta,
        **sizes,
    )


def model_record(model: Model, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model part of provenance: config entry plus the commit actually downloaded."""
    rec = dataclasses.asdict(model)
    if manifest is not None:
        rec["commit_sha"] = manifest.get("commit_sha")
        rec["snapshot_dir"] = manifest.get("snapshot_dir")
    return rec


def materialize(model: Model, snapshot_dir: str | Path, manifest_path: str | Path) -> dict:
    """Download or check a checkpoint and write its manifest (the rule's output)."""
    watch = provenance.Stopwatch()
    if model.source == "hub":
        log.info("downloading %s@%s into %s", model.hub_id, model.revision, snapshot_dir)
        manifest = hub.fetch_snapshot(model.hub_id, model.revision, Path(snapshot_dir))
    else:
        manifest = hub.use_local_dir(Path(model.local_dir or snapshot_dir))
    _check_declared_rope(model, Path(manifest["snapshot_dir"]))
    manifest["model_key"] = model.key
    manifest["provenance"] = provenance.record(
        "download", watch=watch, model=model_record(model, manifest)
    )
    write_json(manifest_path, manifest)
    log.info("checkpoint %s ready: %s", model.key, manifest["snapshot_dir"])
    return manifest


def _check_declared_rope(model: Model, snapshot_dir: Path) -> None:
    # λ and run ids are computed from the config before any download: they must match the file.
    theta, head_dim = rope.read_rope(json.loads((snapshot_dir / "config.json").read_text()))
    if not math.isclose(theta, model.rope_theta) or head_dim != model.head_dim:
        raise ConfigError(
            f"models.{model.key}: the config says rope_theta={model.rope_theta:g}, "
            f"head_dim={model.head_dim}, but {snapshot_dir / 'config.json'} has "
            f"rope_theta={theta:g}, head_dim={head_dim}"
        )


def patch(scaling: rope.NtkScaling, manifest_path: str | Path, record_path: str | Path) -> dict:
    """Write the λ-scaled view next to `record_path`; the record itself is written last."""
    watch = provenance.Stopwatch()
    manifest = read_json(manifest_path)
    source = {k: manifest.get(k) for k in ("repo_id", "requested_revision", "commit_sha")}
    record = rope.patch_checkpoint(
        Path(manifest["snapshot_dir"]), Path(record_path).parent, scaling, source=source
    )
    record["provenance"] = provenance.record(
        "rope_patch",
        watch=watch,
        model=manifest.get("provenance", {}).get("model"),
        rope={"old_theta": record["old_theta"], "new_theta": scaling.new_theta},
    )
    write_json(record_path, record)
    log.info(
        "λ=%s: rope_theta %g -> %g (d_crit=%d, T_extra=%.0f)",
        rope.format_lambda(scaling.ntk_lambda),
        record["old_theta"],
        scaling.new_theta,
        scaling.d_crit,
        scaling.t_extra,
    )
    return record


def model_dir(checkpoint_file: str | Path) -> Path:
    """The directory to load a model from, given the file that stands for its checkpoint."""
    checkpoint_file = Path(checkpoint_file)
    if checkpoint_file.name == "download.json":
        return Path(read_json(checkpoint_file)["snapshot_dir"])
    if checkpoint_file.name == "rope_patch.json":
        return checkpoint_file.parent
    raise ValueError(f"{checkpoint_file} is neither a download.json nor a rope_patch.json")
