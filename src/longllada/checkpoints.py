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

from longllada import fingerprints, hub, provenance, rope
from longllada.config import ConfigError, Model, Study
from longllada.files import canonical, digest, from_project, read_json, write_json

log = logging.getLogger(__name__)


def build_demo(model: Model, out_dir: str | Path) -> Path:
    """Build the tiny checkpoint a demo model entry asks for, sized by its preset."""
    from longllada import demo  # torch: not loaded where the workflow only plans (models.smk)

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
    """The model part of provenance: config entry plus the commit actually downloaded.

    The label is left out: it only names the model in figures, and a result must not carry a
    name the config may since have changed (figures take labels from the config)."""
    rec = {k: v for k, v in dataclasses.asdict(model).items() if k != "label"}
    if manifest is not None:
        rec["commit_sha"] = manifest.get("commit_sha")
        rec["snapshot_dir"] = manifest.get("snapshot_dir")
        rec["checkpoint_sha256"] = manifest.get("checkpoint_sha256")
    return rec


def manifest_digest(manifest: dict[str, Any]) -> str:
    """One sha256 for a checkpoint's exact bytes: its files' names, sizes and sha256."""
    files = manifest.get("verification", {}).get("files", [])
    return digest(canonical(files))


def provenance_path(record_path: str | Path) -> Path:
    """The sidecar with the run facts (time, host, packages) of a manifest or patch record.

    Kept out of download.json and rope_patch.json so that those hold only what later jobs
    depend on: rerunning a download that finds the same bytes (pinning `main` to the commit it
    resolved to, touching a local_dir) leaves them byte-identical, and Snakemake's checksum of
    them then reruns nothing downstream."""
    record_path = Path(record_path)
    return record_path.with_name(record_path.stem + ".provenance.json")


def materialize(model: Model, snapshot_dir: str | Path, manifest_path: str | Path) -> dict:
    """Download or check a checkpoint and write its manifest (the rule's output) and the
    manifest's provenance sidecar."""
    watch = provenance.Stopwatch()
    if model.source == "hub":
        log.info("downloading %s@%s into %s", model.hub_id, model.revision, snapshot_dir)
        manifest = hub.fetch_snapshot(model.hub_id, model.revision, Path(snapshot_dir))
    else:
        manifest = hub.use_local_dir(Path(model.local_dir or snapshot_dir))
    _check_declared_rope(model, from_project(manifest["snapshot_dir"]))
    # download.json holds what later jobs depend on (the bytes, where they are, the commit);
    # the revision asked for and the run facts go to the sidecar (see provenance_path).
    requested = manifest.pop("requested_revision", None)
    manifest["model_key"] = model.key
    manifest["model"] = {k: getattr(model, k) for k in fingerprints.DOWNLOAD_FIELDS}
    manifest["checkpoint_sha256"] = manifest_digest(manifest)
    write_json(
        provenance_path(manifest_path),
        provenance.record(
            "download",
            watch=watch,
            model=model_record(model, manifest),
            requested_revision=requested,
        ),
    )
    write_json(manifest_path, manifest)
    log.info(
        "checkpoint %s ready: %s (sha256 of its files: %s)",
        model.key,
        manifest["snapshot_dir"],
        manifest["checkpoint_sha256"],
    )
    return manifest


def _check_declared_rope(model: Model, snapshot_dir: Path) -> None:
    # λ and run ids are computed from the config before any download: they must match the file.
    # The model_type first: rope.read_rope reads family-specific keys, and a checkpoint of
    # another family must be named as such, not fail on a missing key.
    from longllada.models.loading import model_type_problem  # torch is loaded already (demo)

    path = snapshot_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"models.{model.key}: {path} cannot be read as JSON: {err}") from err
    if not isinstance(config, dict):
        raise ConfigError(f"models.{model.key}: {path} is not a JSON object")
    problem = model_type_problem(config, model.family)
    if problem:
        raise ConfigError(f"models.{model.key} (family {model.family!r}): {path} {problem}")
    if model.family == "llada":  # read_rope tells LLaDA's keys by model_type, which may be
        config = config | {"model_type": "llada"}  # absent or spelled "LLaDA" (the loader's rule)
    try:
        theta, head_dim = rope.read_rope(config)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as err:
        what = f"lacks the key {err.args[0]!r}" if isinstance(err, KeyError) else f"has {err}"
        raise ConfigError(
            f"models.{model.key}: {path} {what}, so its rope_theta and head dim cannot be read "
            f"(a {model.family} config was expected)"
        ) from err
    if not math.isclose(theta, model.rope_theta) or head_dim != model.head_dim:
        raise ConfigError(
            f"models.{model.key}: the config says rope_theta={model.rope_theta:g}, "
            f"head_dim={model.head_dim}, but {snapshot_dir / 'config.json'} has "
            f"rope_theta={theta:g}, head_dim={head_dim}"
        )


def patch_scaling(study: Study, model: str, ntk: str | float) -> rope.NtkScaling:
    """The scaling the rope_patch rule writes for `results/checkpoints/<model>/ntk<λ>/`: only a
    λ that a run of the config uses (ConfigError naming the file asked for and the λ values
    the config has for that model)."""
    asked = f"{study.checkpoint_dir}/{model}/ntk{ntk}/rope_patch.json"
    if model not in study.models:
        raise ConfigError(
            f"{asked}: no model {model!r} in the config (its models: {', '.join(study.models)})"
        )
    try:
        lam = float(ntk)
    except ValueError:
        raise ConfigError(f"{asked}: λ {ntk!r} is not a number") from None
    scaling = study.patches.get((model, lam))
    if scaling is not None:
        return scaling
    have = sorted(x for m, x in study.patches if m == model)
    listed = ", ".join(rope.format_lambda(x) for x in have) if have else "none"
    if lam == 1:
        raise ConfigError(
            f"{asked}: λ 1 is the original checkpoint, not a RoPE patch: ask for "
            f"{study.checkpoint(model)} (RoPE patches of {model}: λ {listed})"
        )
    raise ConfigError(
        f"{asked}: λ {rope.format_lambda(lam)} is no run of {model} in the config; its RoPE "
        f"patches: λ {listed} (add a run at this λ to a target to patch it)"
    )


def patch_input(study: Study, model: str, ntk: str | float) -> str:
    """The rope_patch rule's input, the model's manifest, once the λ asked for is checked
    (:func:`patch_scaling`): before any params function of the rule looks it up."""
    patch_scaling(study, model, ntk)
    return study.checkpoint(model)


def patch(scaling: rope.NtkScaling, manifest_path: str | Path, record_path: str | Path) -> dict:
    """Write the λ-scaled view next to `record_path`; the record itself is written last."""
    watch = provenance.Stopwatch()
    manifest = read_json(manifest_path)
    source = {
        k: manifest.get(k) for k in ("model_key", "repo_id", "commit_sha", "checkpoint_sha256")
    }
    record = rope.patch_checkpoint(
        from_project(manifest["snapshot_dir"]), Path(record_path).parent, scaling, source=source
    )
    write_json(
        provenance_path(record_path),
        provenance.record(
            "rope_patch",
            watch=watch,
            model=manifest.get("model"),
            rope={"old_theta": record["old_theta"], "new_theta": scaling.new_theta},
        ),
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
    """The directory to load a model from, given the file that stands for its checkpoint, once
    its files are checked to be the ones the download check verified.

    download.json's `snapshot_dir` is relative to the project (the working directory) when the
    checkpoint lies inside it, so a copied project loads its own copy; an absolute one (outside
    the project, or an older manifest) is read as it is. Every file is checked against the
    manifest (`hub.check_verified_files`: size, sha256 up to `hub.HASHED_AT_LOAD` bytes, the
    shards' headers against the index); a RoPE-patched view's links must lead to files with the
    contents its original's manifest verified, and its config.json must hold the record's new
    rope_theta. A mismatch raises hub.DownloadError naming the file."""
    checkpoint_file = Path(checkpoint_file)
    if checkpoint_file.name == "download.json":
        manifest = read_json(checkpoint_file)
        root = from_project(manifest["snapshot_dir"])
        if not root.is_dir():
            raise hub.DownloadError(
                f"{checkpoint_file} names the checkpoint directory {manifest['snapshot_dir']} "
                f"({root}), which does not exist: rerun the download check alone (`snakemake "
                f"--forcerun download -- {checkpoint_file}`), then the job"
            )
        files = manifest.get("verification", {}).get("files", [])
        hub.check_verified_files(root, files, str(checkpoint_file))
        return root
    if checkpoint_file.name == "rope_patch.json":
        view = checkpoint_file.parent
        original = view.parent / "download.json"
        # The view's links are checked by what they lead to: the files its original's manifest
        # verified (a dangling link is named as such).
        files = read_json(original).get("verification", {}).get("files", [])
        hub.check_verified_files(view, files, str(original), skip=("config.json",))
        _check_patched_theta(view / "config.json", read_json(checkpoint_file))
        return view
    raise ValueError(f"{checkpoint_file} is neither a download.json nor a rope_patch.json")


def _check_patched_theta(config_path: Path, record: dict[str, Any]) -> None:
    """A view's config.json must hold the rope_theta its rope_patch.json wrote."""
    try:
        config = read_json(config_path)
        params = config.get("rope_parameters") or {}
        theta = float(params.get("rope_theta", config.get("rope_theta")))
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise hub.DownloadError(f"{config_path} cannot be read: {err}", path=config_path) from err
    if not math.isclose(theta, float(record["new_theta"])):
        raise hub.DownloadError(
            f"{config_path} has rope_theta {theta:g}, but the RoPE patch wrote "
            f"{float(record['new_theta']):g}: rerun the patch (`snakemake --forcerun rope_patch "
            f"-- {config_path.parent / 'rope_patch.json'}`), then the job",
            path=config_path,
        )
