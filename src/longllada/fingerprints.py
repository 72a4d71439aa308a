"""What each job's output depends on, as one canonical text that Snakemake fingerprints.

Snakemake's `params` rerun trigger records only builtin-typed values (str, int, dict, list...);
the `Model`, `Run` and `NtkScaling` objects the rules hand to their scripts are recorded as
nothing. Every rule therefore also gets `params.depends_on`: a canonical JSON string of exactly
the config values its output depends on, so that changing one of them reruns that job and only
the jobs that depend on it. File inputs (documents, data, the checkpoint manifests) are covered
by Snakemake's own mtime + checksum trigger; a `local_dir:` checkpoint, which lies outside the
DAG, enters its download job's fingerprint as the size and mtime of each of its files.

The same fingerprint, plus the sha256 of the job's input files, heads the job's resumable
`.partial` (see `partial_header`), so a resumed job never mixes results of two configurations.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from longllada import data_sources, hub
from longllada.config import DATA_KEY, Model, Run, Study
from longllada.files import canonical, digest, sha256_file

__all__ = ["canonical", "digest", "for_job", "partial_header", "unrecorded"]

# The model fields each kind of job depends on; label and gated change no number.
CHECKPOINT_FIELDS = ("family", "variant", "rope_theta", "head_dim", "t_train")
# What the download check compares the checkpoint with, and where it comes from.
DOWNLOAD_FIELDS = ("family", "rope_theta", "head_dim")
SOURCE_FIELDS = ("hub_id", "revision", "local_dir")
CAUSAL_PPL_SETTINGS = ("max_tokens", "chunk", "dtype", "document_index")
# The benchmark settings each stage reads (the rest, e.g. another length added to `lengths`,
# must not rerun it); a benchmark not listed: all of its section.
STAGE_SETTINGS = {
    "niah:prompts": ("depths", "repeats", "length_buffer"),
    "niah:generate": ("max_new_tokens", "sample_limit", "dtype"),
    "niah:score": ("sample_limit",),
    # a RULER length enters through the unit (its context's tokens), not the contexts list
    "ruler:prompts": ("samples", "opencompass_config"),
    "ruler:generate": ("max_new_tokens", "sample_limit", "dtype"),
    "ruler:score": ("sample_limit",),
    # LongBench prompts are whole (model-independent); a context enters a generation job
    # through its unit (the budget's tokens)
    "longbench:prompts": (),
    "longbench:generate": ("sample_limit", "dtype", "dream_bos", "max_new_tokens_cap"),
    "longbench:score": ("sample_limit", "contexts"),
}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class Unrecorded(Sequence):
    """A list of objects for a rule script that Snakemake's params trigger does not record.

    Snakemake records a list param by its repr, so a list of `Model`s would rerun a figure when
    a field it does not draw (dtype, say) changes; `depends_on` records what the job uses."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = tuple(items)

    def __getitem__(self, i):  # type: ignore[override]
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)


class UnrecordedMap(Mapping):
    """A settings mapping for a rule script that Snakemake's params trigger does not record."""

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def unrecorded(value: Any) -> Any:
    """`value` as a rule param Snakemake does not fingerprint: `depends_on` alone says what a
    job depends on, so that no param reruns a job for a value the job does not use."""
    if isinstance(value, Mapping):
        return UnrecordedMap(value)
    if isinstance(value, list | tuple):
        return Unrecorded(value)
    return value


def _fields(model: Model, names: tuple[str, ...]) -> dict[str, Any]:
    return {"key": model.key, **{n: getattr(model, n) for n in names}}


def local_dir_state(path: str | Path) -> list[list[Any]] | str:
    """(name, size, mtime_ns) of every checkpoint file the download check verifies in a
    directory outside the DAG, so that replacing its weights reruns that check (which hashes
    them) and what follows."""
    root = Path(path).expanduser()
    if not root.is_dir():
        return f"missing: {root}"
    state = []
    for name in hub.listed_files(root, hub.DEFAULT_PATTERNS):
        st = (root / name).stat()
        state.append([name, st.st_size, st.st_mtime_ns])
    return state


# --- one function per kind of job ------------------------------------------------------------


def demo_checkpoint(model: Model) -> dict[str, Any]:
    return {"job": "demo_checkpoint", "model": _fields(model, (*CHECKPOINT_FIELDS, "demo"))}


def download(model: Model, provenance_file: str | Path | None = None) -> dict[str, Any]:
    """The download check of a model: where its bytes come from, and what it checks them with.

    `provenance_file`: the sidecar of an earlier download of this model. Pinning `revision`
    to the very commit a branch resolved to then changes nothing (README: pin after the first
    download); pinning it to any other commit reruns the download and everything after it.
    """
    fields = {"key": model.key, **{k: getattr(model, k) for k in DOWNLOAD_FIELDS}}
    if model.source == "demo":  # its directory is the job's input; Snakemake watches it
        return {"job": "download", "model": fields, "source": "demo"}
    if model.source == "local":
        return {
            "job": "download",
            "model": fields,
            "source": {"local_dir": model.local_dir},
            "local_dir_state": local_dir_state(model.local_dir or ""),
        }
    revision = model.revision
    if revision and _COMMIT.match(revision) and provenance_file and Path(provenance_file).exists():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            earlier = json.loads(Path(provenance_file).read_text())
            if (
                earlier["model"]["hub_id"] == model.hub_id
                and earlier["model"]["commit_sha"] == revision
            ):
                revision = earlier["requested_revision"] or revision
    return {
        "job": "download",
        "model": fields,
        "source": {"hub_id": model.hub_id, "revision": revision},
    }


def rope_patch(model: Model, scaling: Any) -> dict[str, Any]:
    return {
        "job": "rope_patch",
        "model": _fields(model, CHECKPOINT_FIELDS),
        "scaling": scaling.to_dict(),
    }


def compute(
    model: Model,
    run: Run,
    settings: Mapping[str, Any] | None,
    seed: int,
    **extra: Any,
) -> dict[str, Any]:
    """A GPU job (perplexity, Q/K states, generation): the model's numerics, the run's λ and
    sampler, the benchmark settings and the seed."""
    settings = dict(settings or {})
    if run.benchmark == "ppl" and not model.diffusion:
        # One causal forward: the Monte-Carlo knobs do not touch it.
        settings = {k: v for k, v in settings.items() if k in CAUSAL_PPL_SETTINGS}
    dtype = settings.get("dtype") or model.dtype
    numerics = {**_fields(model, ("family",)), "dtype": dtype}
    if model.attn_impl != "auto":  # the kernel changes numbers (by rounding); "auto" is absent
        numerics["attn_impl"] = model.attn_impl  # so that the key's arrival reruns nothing
    return {
        "job": run.benchmark,
        "model": numerics,
        "run": {
            "setting": run.setting,
            "ntk_lambda": run.ntk_lambda,
            "sampler": dict(run.sampler),
        },
        "settings": settings,
        "seed": seed,
        **extra,
    }


def verify(model: Model, settings: Mapping[str, Any], seed: int) -> dict[str, Any]:
    return {
        "job": "verify",
        "model": _fields(model, ("family",)),
        "settings": dict(settings),
        "seed": seed,
    }


def benchmark_stage(stage: str, settings: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """A CPU stage of a benchmark (prompts, scoring): its settings and what else it names."""
    return {"job": stage, "settings": dict(settings or {}), **extra}


def figure(study: Study, name: str) -> dict[str, Any]:
    """An aggregation: the target's spec and what it shows of each model."""
    target = study.targets[name]
    keys = dict.fromkeys([r.model for r in target.runs] + list(target.spec.get("models", [])))
    models = {
        k: _fields(study.models[k], ("label", "family", "rope_theta", "head_dim", "t_train"))
        for k in keys
    }
    return {
        "job": "figure",
        "target": name,
        "spec": target.spec,
        "models": models,
        "seed": study.seed,
    }


def for_job(study: Study, kind: str, wildcards: Mapping[str, str]) -> dict[str, Any]:
    """The fingerprint of one job, from the rule kind and the job's wildcards."""
    w = dict(wildcards)
    if kind == "figure":
        return figure(study, w["name"])
    bench, _, stage = kind.partition(":")  # "ppl", "niah:generate", "niah:score", ...
    unit = {
        k: w[k] for k in ("unit", "length", "context", "subset", "task", "first", "stop") if k in w
    }
    if bench in ("ruler", "longbench") and "context" in unit:  # what a label means: tokens
        unit["tokens"] = study.benchmarks[bench]["contexts"][unit["context"]]
    if stage == "data":
        spec = study.data.get(DATA_KEY[bench])
        files = data_sources.files_of(bench, study.benchmarks.get(bench))
        return {
            "job": kind,
            "source": spec,
            "files": list(files),
            "local_state": data_sources.local_state(bench, spec, files),
        }
    if stage == "all_runs":  # a table of every run's scores: its inputs say it all
        return {"job": kind}
    settings = stage_settings(kind, study.benchmarks.get(bench))
    if stage == "prompts":
        return benchmark_stage(kind, settings, unit=unit, seed=study.seed)
    model = study.models[w["model"]]
    if kind == "demo_checkpoint":
        return demo_checkpoint(model)
    if kind == "download":
        sidecar = f"{study.checkpoint_dir}/{model.key}/download.provenance.json"
        return download(model, sidecar)
    if kind == "rope_patch":
        return rope_patch(model, study.patches[(model.key, float(w["ntk"]))])
    if kind == "verify":
        from longllada.verify import settings as verify_settings

        return verify(model, verify_settings(study.config.get("verify")), study.seed)
    run = study.run_for(bench, model.key, w["setting"])
    if stage == "score":
        return benchmark_stage(kind, settings, run=compute(model, run, settings, study.seed))
    extra: dict[str, Any] = {"unit": unit} if unit else {}
    if bench == "qk_states":
        extra["document_index"] = study.benchmarks.get("ppl", {}).get("document_index", 0)
    return compute(model, run, settings, study.seed, **extra)


def stage_settings(kind: str, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The part of a benchmark's settings one stage reads (STAGE_SETTINGS)."""
    settings = dict(settings or {})
    keys = STAGE_SETTINGS.get(kind)
    return settings if keys is None else {k: settings[k] for k in keys if k in settings}


# --- the header of a resumable job ---------------------------------------------------------


def partial_header(depends_on: str | Mapping[str, Any], inputs: Mapping[str, Any]) -> dict:
    """What a `.partial` is valid for: the job's fingerprint and its input files' sha256."""
    params = json.loads(depends_on) if isinstance(depends_on, str) else dict(depends_on)
    files = {name: sha256_file(p) for name, p in sorted(inputs.items()) if p is not None}
    return {"depends_on": params, "inputs": files}
