# Config -> study -> target lists. The logic lives in longllada.config (tested); this file only
# exposes it to the rules.
import dataclasses
import os
from pathlib import Path

from longllada import budget, data_sources, fingerprints, targets
from longllada.benchmarks import longbench, niah, ruler
from longllada.config import Study
from longllada.reproduction.verdicts import Tolerances

study = Study(
    config, schema_path=Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
)
CKPT = study.checkpoint_dir


wildcard_constraints:
    model="[a-z0-9_]+",
    setting="ntk[0-9.]+(_[a-z]+[0-9a-z.]*)*",
    ntk="[0-9.]+",
    length="[0-9]+",
    unit="[0-9a-z_.-]+",
    context="[0-9]+k",
    subset="[a-z0-9_-]+",
    task="[a-z0-9_]+",
    draws="[0-9]+",
    chunk="[0-9]+",


def all_target_files():
    return [f for t in study.paper_targets() for f in t.outputs]


def implemented_target_files():
    return [
        f
        for t in study.paper_targets()
        if targets.implemented(t.kind)
        for f in t.outputs
    ]


def report_result_files():
    """What the reproduction report reads of the paper's runs: their result files."""
    return sorted({f for r in study.paper_runs() for f in study.result_files(r)})


def extension_target_files():
    return [f for t in study.targets.values() if t.extension for f in t.outputs]


def run_of(benchmark):
    """Input/params function: the Run a job's wildcards name."""
    return lambda w: study.run_for(benchmark, w.model, w.setting)


def checkpoint_of(benchmark):
    """Input function: the checkpoint (original or RoPE-patched) a job's run uses."""

    def inputs(w):
        run = study.run_for(benchmark, w.model, w.setting)
        return study.checkpoint(run.model, run.ntk_lambda)

    return inputs


def gpu_runtime(benchmark, unit_of):
    """Resource function: SLURM minutes from the cost model, growing with each retry."""

    def minutes(w, attempt):
        run = study.run_for(benchmark, w.model, w.setting)
        return budget.slurm_runtime_minutes(study, run, unit_of(w), attempt)

    return minutes


def targets_of(kind):
    """Wildcard constraint matching exactly the target names of one kind."""
    names = [t.name for t in study.targets.values() if t.kind == kind]
    return "|".join(names) if names else "(?!)"


def target_inputs(w):
    return study.target_inputs(w.name)


def download_input(w):
    """A demo model's checkpoint is built first; hub and local models need no input."""
    model = study.models[w.model]
    return [f"results/demo_hub/{w.model}"] if model.source == "demo" else []


def ppl_document():
    """The long document of Figures 1a and 5 (config data.ppl_document)."""
    return study.data["ppl_document"]


def verified_of(benchmark):
    """Input function: the model's passing verify.json when config `verify.required` is true or
    lists the model's family (the paper's: [llada, dream]). Marked ancient: a job waits for
    it, but a verify.json rewritten later (a new check) does not rerun finished GPU jobs.
    """
    required = config.get("verify", {}).get("required", False)

    def inputs(w):
        family = study.models[w.model].family
        if required is True or (isinstance(required, list) and family in required):
            return [ancient(f"{CKPT}/{w.model}/verify.json")]
        return []

    return inputs


def target_models(w):
    """Params function: the config entries of the models a target's runs use."""
    keys = dict.fromkeys(r.model for r in study.targets[w.name].runs)
    return fingerprints.Unrecorded(study.models[k] for k in keys)


def depends_on(kind):
    """Params function: the canonical text of everything a job's output depends on.

    Snakemake fingerprints only builtin-typed params; this string is what makes a change of
    the config rerun exactly the jobs it affects (longllada.fingerprints)."""
    return lambda w: fingerprints.canonical(
        fingerprints.for_job(study, kind, dict(w.items()))
    )


def published_input(w):
    """Input function: the paper's numbers a target draws beside ours, when it names them."""
    published = study.targets[w.name].spec.get("published") or []
    return [published] if isinstance(published, str) else list(published)


def one_of(values):
    """Wildcard constraint matching exactly these values (a config's lengths, say), so that a
    file of another value has no rule and Snakemake's message names it."""
    return "|".join(str(v) for v in values) if values else "(?!)"


def sample_range_of(benchmark):
    """Params function: a LongBench shard's [first, stop), or None for a job over the whole
    subset (which then takes however many samples the data has)."""

    def sample_range(w):
        run = study.run_for(benchmark, w.model, w.setting)
        if len(budget.shards(study, run, f"{w.context}_{w.subset}")) == 1:
            return None
        return [int(w.first), int(w.stop)]

    return sample_range


def shard_of(item):
    """The shard a generation job's wildcards name: <context>_<task or subset>.samples<a>-<b>."""
    return lambda w: f"{w.context}_{getattr(w, item)}.samples{w.first}-{w.stop}"


def previous_shard_of(benchmark, unit_of):
    """Input/params function: the predictions of the shard before this one when the run draws
    random numbers (Dream: its shards continue one random stream, `Study.previous_shard`);
    none for a first shard, an unsharded job, LLaDA and LLaMA."""

    def previous(w):
        run = study.run_for(benchmark, w.model, w.setting)
        found = study.previous_shard(run, unit_of(w))
        return [found] if found else []

    return previous


def continue_from_of(benchmark, unit_of):
    """Params function: that file (or None), the job's `continue_from`."""
    previous = previous_shard_of(benchmark, unit_of)
    return lambda w: (previous(w) or [None])[0]
