"""The typed study: models, runs and targets, expanded from one validated config.

Everything the paper measures is a *run*: (benchmark, model, λ, sampler settings). A run's
*setting id* (``ntk14_s32_b32``) names its directory, and a run shared by several targets
(Figures 1b and 2, Tables 1 and 3) is one run, computed once. A run is split into *units*
(a NIAH length, a LongBench subset at one context, ...), one job each.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from longllada import rope
from longllada.benchmarks import longbench
from longllada.yaml_config import ConfigError, load_config

__all__ = ["ConfigError", "Study", "validate"]

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

# The paper's sampler settings (MODELS.md). Run ids name only what differs from these, plus the
# step and block counts that every diffusion figure reads.
PAPER_SAMPLERS: dict[str, dict[str, Any]] = {
    "llada": {
        "steps": 32,
        "block_length": 32,
        "temperature": 0.0,
        "cfg_scale": 0.0,
        "remasking": "low_confidence",
    },
    # sampling "paper": the official Categorical check with its argmax fallback (sampling/dream.py)
    "dream": {
        "steps": 32,
        "alg": "entropy",
        "temperature": 0.2,
        "top_p": 0.95,
        "sampling": "paper",
    },
    "ar": {},  # greedy decoding
}
SAMPLER_CHOICES = {
    "remasking": ("low_confidence", "random"),
    "alg": ("origin", "maskgit_plus", "topk_margin", "entropy"),
    "sampling": ("paper", "clean"),
}
ALWAYS_IN_ID = {"llada": ("steps", "block_length"), "dream": ("steps",), "ar": ()}
ID_ABBREV = {
    "steps": "s",
    "block_length": "b",
    "temperature": "t",
    "cfg_scale": "cfg",
    "remasking": "rm",
    "alg": "alg",
    "top_p": "p",
    "sampling": "smp",
}
# "gen_length": as many steps as output tokens (the paper's LongBench setting).
STEPS_PER_TOKEN = "gen_length"
# The largest explicit or scaling-law λ (the paper's are <= 55); the schema says the same.
MAX_LAMBDA = 1e6

GENERATIVE = ("niah", "longbench", "ruler")
# benchmark -> its key under `data:` (and the name of its data directories)
DATA_KEY = {"niah": "needlebench", "longbench": "longbench", "ruler": "ruler"}
TABLE_KINDS = ("longbench_table", "ruler_table")
SHARDED = ("ruler", "longbench")  # generation jobs split into sample ranges
NIAH_KINDS = ("niah_heatmaps", "niah_by_length")
NIAH_FIGURE_FILES = ("pdf", "png", "csv", "comparison.csv")
PPL_FIGURE_FILES = ("pdf", "png", "comparison.csv")
FIGURE_FILES = ("pdf", "png")  # every figure: the PDF, and the PNG the report inlines
RULER_TABLE_FILES = ("comparison.csv", "tasks.csv")
LONGBENCH_TABLE_FILES = ("comparison.csv", "subsets.csv")
KIND_BENCHMARKS = {
    "perplexity_curve": ("ppl",),
    "niah_by_length": ("niah",),
    "niah_heatmaps": ("niah",),
    "rope_coverage": (),
    "tsne_qk": ("qk_states",),
    "longbench_table": ("longbench",),
    "ruler_table": ("ruler",),
}


@dataclass(frozen=True)
class Model:
    key: str
    label: str
    family: str  # ar | llada | dream
    variant: str  # base | instruct
    t_train: int
    rope_theta: float
    head_dim: int
    dtype: str
    # The attention kernel: auto (the paper's: flash-attn for LLaDA where it can run, SDPA for
    # Dream and LLaMA3), sdpa, or flash (a job stops before reading weights where it cannot run).
    attn_impl: str = "auto"
    hub_id: str | None = None
    revision: str | None = None
    gated: bool = False
    local_dir: str | None = None
    demo: dict[str, Any] | None = None

    @property
    def diffusion(self) -> bool:
        return self.family != "ar"

    @property
    def source(self) -> str:
        return "demo" if self.demo else "local" if self.local_dir else "hub"


@dataclass(frozen=True)
class Run:
    """One (benchmark, model, λ, sampler) combination; equal runs are one job set."""

    benchmark: str
    model: str
    family: str
    ntk_lambda: float
    sampler: tuple[tuple[str, Any], ...] = ()

    @property
    def setting(self) -> str:
        return setting_id(self.ntk_lambda, dict(self.sampler), self.family)

    @property
    def directory(self) -> str:
        return f"results/{self.benchmark}/{self.model}/{self.setting}"


@dataclass
class Target:
    name: str
    kind: str
    spec: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    @property
    def extension(self) -> bool:
        """Beyond the paper: built by `snakemake extensions`, not by `all`."""
        return bool(self.spec.get("extension", False))

    @property
    def outputs(self) -> list[str]:
        if self.kind == "ruler_table":  # the table, its comparison and the per-task scores
            exts = ("csv", "md", "tex", *RULER_TABLE_FILES)
            return [f"paper_figures/{self.name}.{ext}" for ext in exts]
        if self.kind == "longbench_table":  # ... and the per-subset scores
            exts = ("csv", "md", "tex", *LONGBENCH_TABLE_FILES)
            return [f"paper_figures/{self.name}.{ext}" for ext in exts]
        if self.kind in TABLE_KINDS:
            return [f"paper_figures/{self.name}.{ext}" for ext in ("csv", "md", "tex")]
        if self.kind in NIAH_KINDS:  # the numbers drawn, and the paper's beside them
            return [f"paper_figures/{self.name}.{ext}" for ext in NIAH_FIGURE_FILES]
        if self.kind == "perplexity_curve":  # the curves' numbers beside the paper's
            return [f"paper_figures/{self.name}.{ext}" for ext in PPL_FIGURE_FILES]
        return [f"paper_figures/{self.name}.{ext}" for ext in FIGURE_FILES]


def uses_rng(run: Run) -> bool:
    """Whether a run's sampler draws random numbers: Dream at T > 0 (the paper's 0.2) or with
    the `origin` algorithm, LLaDA only at T > 0 or with random remasking, LLaMA (greedy) never.
    As `stages.generation.decoding_for` decides it (tested to agree). Such a run's shards of one
    prompts file are chained (`Study.previous_shard`)."""
    sampler = dict(run.sampler)
    if run.family == "dream":
        return sampler.get("temperature", 0.2) > 0 or sampler.get("alg") == "origin"
    if run.family == "llada":
        return sampler.get("temperature", 0.0) > 0 or sampler.get("remasking") == "random"
    return False


def generation_record(predictions: str | Path) -> str:
    """`<unit>.provenance.json`, beside a generation job's `<unit>.predictions.jsonl`."""
    return str(predictions).removesuffix(".predictions.jsonl") + ".provenance.json"


def setting_id(ntk_lambda: float, sampler: dict[str, Any], family: str) -> str:
    parts = [f"ntk{rope.format_lambda(ntk_lambda)}"]
    defaults = PAPER_SAMPLERS[family]
    for key in ID_ABBREV:
        if key not in sampler:
            continue
        value = sampler[key]
        if key in ALWAYS_IN_ID[family] or value != defaults.get(key):
            parts.append(f"{ID_ABBREV[key]}{_id_text(value)}")
    return "_".join(parts)


def _id_text(value: Any) -> str:
    """A sampler value in a run id. Numbers are written as λ is: exactly (no two settings share
    an id) and never with an exponent ("1e-05" would not match the setting wildcard)."""
    if value == STEPS_PER_TOKEN:
        return "gen"
    return rope.format_lambda(value) if _is_num(value) else str(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def llada_steps_problem(
    max_new_tokens: int, block_length: int, steps: int, what: str = "the answer"
) -> str | None:
    """Why LLaDA's sampler would refuse these settings at generation time, or None.

    As `longllada.sampling.llada` does it (not imported here: it needs torch): the answer is
    rounded up to whole blocks (`official_gen_length`), the steps are capped at that length
    (`StepsPolicy`), and the steps must split evenly over the blocks (`generate`).
    """
    gen_length = -(-max_new_tokens // block_length) * block_length
    blocks = gen_length // block_length
    used = min(steps, gen_length)
    if used % blocks == 0:
        return None
    return (
        f"{steps} steps cannot be split evenly over the LLaDA blocks of {what}: max_new_tokens "
        f"{max_new_tokens} is decoded as {gen_length} tokens, {blocks} blocks of block_length "
        f"{block_length}; use a multiple of {blocks} steps (or at least {gen_length})"
    )


def _where(path: Iterable[Any]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def validate(config: dict[str, Any], schema_path: str | Path = DEFAULT_SCHEMA) -> None:
    """Check a config against the schema; raise ConfigError naming the first bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        lines = [f"  {_where(e.absolute_path)}: {_brief(e)}" for e in errors[:10]]
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ConfigError("invalid config:\n" + "\n".join(lines) + more)


def _brief(error: jsonschema.ValidationError) -> str:
    # oneOf failures say "is not valid under any of the given schemas"; say what was expected.
    if error.validator == "oneOf" and error.context:
        reasons = sorted({c.message for c in error.context})
        return f"{error.instance!r} is not valid: " + "; or ".join(reasons)
    return error.message


class Study:
    """A validated config, expanded into models, runs and targets."""

    def __init__(self, config: dict[str, Any], schema_path: str | Path = DEFAULT_SCHEMA) -> None:
        validate(config, schema_path)
        self.config = config
        self.seed: int = config["seed"]
        self.checkpoint_dir: str = config.get("checkpoint_dir", "results/checkpoints")
        self.ntk_variant: str = config.get("ntk_variant", "paper")
        self.benchmarks: dict[str, dict[str, Any]] = config["benchmarks"]
        self._check_family_samplers()
        self.models = {key: self._model(key, spec) for key, spec in config["models"].items()}
        # (model, λ) -> the scaling-law record the patch rule writes
        self.patches: dict[tuple[str, float], rope.NtkScaling] = {}
        self.targets = {name: self._target(name, spec) for name, spec in config["targets"].items()}
        self.runs: dict[tuple[str, str, str], Run] = {}
        for target in self.targets.values():
            for run in target.runs:
                known = self.runs.setdefault((run.benchmark, run.model, run.setting), run)
                if known != run:
                    raise ConfigError(
                        f"targets.{target.name}: two different {run.benchmark} runs of "
                        f"{run.model} share the setting id {run.setting!r}"
                    )
        self.data: dict[str, str] = config.get("data", {})
        needs_document = sorted({r.benchmark for r in self.runs.values()} & {"ppl", "qk_states"})
        ppl = self.benchmarks.get("ppl")
        if ppl and (ppl["max_tokens"] % ppl["chunk"] or ppl["max_tokens"] < 2 * ppl["chunk"]):
            raise ConfigError(
                f"benchmarks.ppl.max_tokens: {ppl['max_tokens']} must be a multiple of chunk "
                f"({ppl['chunk']}) and at least two chunks"
            )
        niah = self.benchmarks.get("niah")
        if niah:
            buffer = niah.get("length_buffer", 600)
            short = [n for n in niah["lengths"] if n <= buffer]
            if short:
                raise ConfigError(
                    f"benchmarks.niah.lengths: {short} not above length_buffer {buffer} (the "
                    "tokens NeedleBench leaves for the question): lower length_buffer or drop them"
                )
        for bench in GENERATIVE:  # each reads its data through a data check
            key = DATA_KEY[bench]
            if any(r.benchmark == bench for r in self.runs.values()) and key not in self.data:
                raise ConfigError(f"data.{key}: required by the {bench} runs")
        if needs_document and "ppl_document" not in self.data:
            raise ConfigError(
                f"data.ppl_document: required by the {' and '.join(needs_document)} runs"
            )

    @classmethod
    def from_file(cls, path: str | Path, schema_path: str | Path = DEFAULT_SCHEMA) -> Study:
        return cls(load_config(path), schema_path)

    def input_problems(self, root: str | Path = ".", repo: str | Path | None = None) -> list[str]:
        """What must stop a run before it starts, one line each ([] when nothing): a file or
        directory the config names that is not there (published CSVs, the document, local
        data directories, models' local_dir; relative paths read from the working directory
        `root`), or fetched or generated data edited after its data check (longllada.inputs).
        `repo`: the repository, when snakemake may run elsewhere (relative paths found there
        but not in `root` are left to the Snakefile's warning, invocation.paths_not_here)."""
        from longllada import inputs  # it imports data_sources, which imports this module

        return inputs.problems(self, root, repo)

    # --- building ------------------------------------------------------------------------

    def _model(self, key: str, spec: dict[str, Any]) -> Model:
        sources = [s for s in ("hub_id", "local_dir", "demo") if s in spec]
        if len(sources) != 1:
            raise ConfigError(
                f"models.{key}: give exactly one of hub_id, local_dir, demo "
                f"(got {sources or 'none'})"
            )
        if "hub_id" in spec and "revision" not in spec:
            raise ConfigError(f"models.{key}.revision: required with hub_id (pin a commit sha)")
        if not math.isfinite(spec["rope_theta"]):  # the schema's exclusiveMinimum lets NaN by
            raise ConfigError(
                f"models.{key}.rope_theta: {spec['rope_theta']} is not a finite number"
            )
        return Model(key=key, **spec)

    def _check_family_samplers(self) -> None:
        """A benchmark's per-family sampler may only set keys that family's sampler takes."""
        for bench, cfg in self.benchmarks.items():
            for family, settings in cfg.get("sampler", {}).items():
                for key in settings:
                    if key not in PAPER_SAMPLERS[family]:
                        known = ", ".join(PAPER_SAMPLERS[family])
                        raise ConfigError(
                            f"benchmarks.{bench}.sampler.{family}.{key}: not a {family} sampler "
                            f"setting ({known})"
                        )

    def _target(self, name: str, spec: dict[str, Any]) -> Target:
        kind = spec["kind"]
        target = Target(name=name, kind=kind, spec=spec)
        for i, key in enumerate(spec.get("models", [])):
            self._check_model(key, f"targets.{name}.models[{i}]")
        if kind == "rope_coverage" and not spec.get("models"):
            raise ConfigError(f"targets.{name}.models: a rope_coverage target needs models")
        for g, group in enumerate(spec.get("runs", [])):
            where = f"targets.{name}.runs[{g}]"
            bench = group["benchmark"]
            if bench not in KIND_BENCHMARKS[kind]:
                raise ConfigError(f"{where}.benchmark: a {kind} target cannot use {bench!r}")
            if bench not in self.benchmarks:
                raise ConfigError(f"{where}.benchmark: {bench!r} has no settings under benchmarks")
            target.runs.extend(self._expand(group, where))
        if KIND_BENCHMARKS[kind] and not target.runs:
            raise ConfigError(f"targets.{name}.runs: a {kind} target needs at least one run")
        self._check_labels(target)
        return target

    def _check_labels(self, target: Target) -> None:
        """The models of one target label its curves, panels or rows: they must differ."""
        keys = dict.fromkeys([*target.spec.get("models", []), *(r.model for r in target.runs)])
        by_label: dict[str, str] = {}
        for key in keys:
            label = self.models[key].label
            if label in by_label:
                raise ConfigError(
                    f"targets.{target.name}: models {by_label[label]!r} and {key!r} have the "
                    f"same label {label!r}; their curves or rows would collide (give each model "
                    "its own label under models)"
                )
            by_label[label] = key

    def _check_model(self, key: str, where: str) -> Model:
        if key not in self.models:
            known = ", ".join(sorted(self.models))
            raise ConfigError(f"{where}: model {key!r} is not defined under models ({known})")
        return self.models[key]

    def _expand(self, group: dict[str, Any], where: str) -> list[Run]:
        bench = group["benchmark"]
        overrides = group.get("sampler", {})
        runs = []
        for m, key in enumerate(group["models"]):
            model = self._check_model(key, f"{where}.models[{m}]")
            lambdas = [
                self._scaling(model, entry, f"{where}.ntk[{n}]").ntk_lambda
                for n, entry in enumerate(group.get("ntk", [1]))
            ]
            samplers = self._samplers(model, bench, overrides, where)
            for lam, sampler in itertools.product(lambdas, samplers):
                runs.append(Run(bench, key, model.family, lam, sampler))
        return runs

    def _scaling(self, model: Model, entry: Any, where: str) -> rope.NtkScaling:
        b, d, t = model.rope_theta, model.head_dim, model.t_train
        if not isinstance(entry, dict) and not (1 <= float(entry) <= MAX_LAMBDA):
            # The schema's minimum/maximum let NaN through.
            raise ConfigError(
                f"{where}: λ {entry!r} must be a finite number in [1, {MAX_LAMBDA:g}]"
            )
        try:
            if isinstance(entry, dict):
                variant = entry.get("variant", self.ntk_variant)
                scaling = rope.scaling_for_target(b, d, t, entry["target"], variant)
            else:
                scaling = rope.scaling_for_lambda(b, d, t, float(entry), self.ntk_variant)
        except (ValueError, OverflowError) as e:
            raise ConfigError(f"{where}: {e}") from None
        if not scaling.ntk_lambda <= MAX_LAMBDA:
            raise ConfigError(
                f"{where}: the scaling law gives λ = {scaling.ntk_lambda:g} for target "
                f"{scaling.t_target} ({model.key}), above the maximum {MAX_LAMBDA:g}"
            )
        if scaling.ntk_lambda != 1:
            known = self.patches.get((model.key, scaling.ntk_lambda))
            # Keep the record that says which target length the λ came from.
            if known is None or (known.t_target is None and scaling.t_target is not None):
                self.patches[(model.key, scaling.ntk_lambda)] = scaling
        return scaling

    def _samplers(
        self, model: Model, bench: str, overrides: dict[str, Any], where: str
    ) -> list[tuple[tuple[str, Any], ...]]:
        if bench not in GENERATIVE or not model.diffusion:
            return [()]
        base = dict(PAPER_SAMPLERS[model.family])
        base.update(self.benchmarks[bench].get("sampler", {}).get(model.family, {}))
        sweeps = {}
        for key, value in overrides.items():
            if key not in base:
                continue  # e.g. block_length in a group that mixes LLaDA and Dream models
            sweeps[key] = value if isinstance(value, list) else [value]
        out = []
        for combo in itertools.product(*sweeps.values()):
            settings = {**base, **dict(zip(sweeps, combo, strict=True))}
            self._check_sampler(settings, model.family, where)
            if model.family == "llada":
                self._check_blocks(settings, bench, where)
            out.append(tuple(sorted(settings.items())))
        return out

    @staticmethod
    def _check_sampler(settings: dict[str, Any], family: str, where: str) -> None:
        for key, value in settings.items():
            if key in SAMPLER_CHOICES and value not in SAMPLER_CHOICES[key]:
                choices = ", ".join(SAMPLER_CHOICES[key])
                raise ConfigError(f"{where}.sampler.{key}: {value!r} is not one of {choices}")
        steps = settings["steps"]
        if steps != STEPS_PER_TOKEN and not (_is_int(steps) and steps >= 1):
            raise ConfigError(
                f"{where}.sampler.steps: {steps!r} is not a positive integer or {STEPS_PER_TOKEN!r}"
            )
        if family == "llada" and not (
            _is_int(settings["block_length"]) and settings["block_length"] >= 1
        ):
            raise ConfigError(f"{where}.sampler.block_length: must be a positive integer")
        for key in ("temperature", "cfg_scale"):
            value = settings.get(key, 0)
            if not (_is_num(value) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{where}.sampler.{key}: must be a finite number >= 0")
        if "top_p" in settings and not (_is_num(settings["top_p"]) and 0 < settings["top_p"] <= 1):
            raise ConfigError(f"{where}.sampler.top_p: must be in (0, 1]")

    def _check_blocks(self, settings: dict[str, Any], bench: str, where: str) -> None:
        """LLaDA's steps must split evenly over the answer's blocks, for every answer length."""
        steps, block = settings["steps"], settings["block_length"]
        if steps == STEPS_PER_TOKEN:
            return  # one step per generated token: always whole blocks
        cfg = self.benchmarks[bench]
        if bench in ("niah", "ruler"):
            lengths = [(f"{bench} answers", cfg["max_new_tokens"])]
        elif bench == "longbench":
            lengths = [
                (f"longbench subset {name} answers", longbench.answer_tokens(name, cfg))
                for name in cfg["subsets"]
                if name in longbench.SUBSETS
            ]
        else:
            return
        for what, max_new_tokens in lengths:
            problem = llada_steps_problem(max_new_tokens, block, steps, what)
            if problem:
                raise ConfigError(f"{where}.sampler.steps: {problem}")

    # --- files -----------------------------------------------------------------------------

    def units(self, benchmark: str, model: str) -> list[str]:
        cfg = self.benchmarks[benchmark]
        if benchmark == "ppl":
            if self.models[model].diffusion:
                return [f"mc{cfg['mc_draws']}_chunk{cfg['chunk']}"]
            return [f"causal_chunk{cfg['chunk']}"]
        if benchmark in ("niah",):
            return [f"len{n}" for n in cfg["lengths"]]
        if benchmark == "qk_states":
            return [f"len{cfg['length']}"]
        items = cfg["subsets"] if benchmark == "longbench" else cfg["tasks"]
        return [f"{ctx}_{item}" for ctx in cfg["contexts"] for item in items]

    def run_units(self, run: Run) -> list[str]:
        """A run's jobs: its units, RULER's and LongBench's split into sample ranges
        (`shard_minutes`) that run as jobs of their own (4k_vt.samples0-50)."""
        if run.benchmark not in SHARDED:
            return self.units(run.benchmark, run.model)
        from longllada import budget  # it imports this module

        return [
            f"{unit}.samples{first}-{stop}"
            for unit in self.units(run.benchmark, run.model)
            for first, stop in budget.shards(self, run, unit)
        ]

    def previous_shard(self, run: Run, unit: str) -> str | None:
        """The predictions file of the shard before `unit` (4k_vt.samples50-100) when the run
        draws random numbers (`uses_rng`: Dream): its shards continue one random stream, each
        from the state the one before ended with, as the official unsharded tasks did. None for
        a first shard, an unsharded job and a run without random numbers (independent shards).
        A range that is not one of the run's shards: ConfigError."""
        if run.benchmark not in SHARDED or not uses_rng(run):
            return None
        from longllada import budget  # it imports this module

        base, _, span = unit.partition(".samples")
        ranges = budget.shards(self, run, base)
        here = tuple(int(x) for x in span.split("-")) if span else ranges[0]
        if here not in ranges:
            layout = ", ".join(f"{a}-{b}" for a, b in ranges)
            raise ConfigError(
                f"{run.directory}/{unit}: samples {here[0]}-{here[1]} are not one of the shards "
                f"of {base} ({layout}); the shards of a run that draws random numbers are chained"
            )
        k = ranges.index(here)
        if k == 0:
            return None
        first, stop = ranges[k - 1]
        return f"{run.directory}/{base}.samples{first}-{stop}.predictions.jsonl"

    def generation_records(self, run: Run) -> list[str]:
        """The provenance file each generation job writes beside its predictions."""
        return [generation_record(f) for f in self.prediction_files(run)]

    def prediction_files(self, run: Run) -> list[str]:
        units = self.run_units(run)
        return [f"{run.directory}/{u}.predictions.jsonl" for u in units]

    def result_files(self, run: Run) -> list[str]:
        """What a target reads of a run: one scores.json per generative run (scored in one
        CPU job, so OpenCompass is imported once per run, not once per unit)."""
        if run.benchmark in GENERATIVE:
            return [f"{run.directory}/scores.json"]
        suffix = {"ppl": ".json", "qk_states": ".npz"}[run.benchmark]
        return [f"{run.directory}/{u}{suffix}" for u in self.units(run.benchmark, run.model)]

    def paper_targets(self) -> list[Target]:
        """The targets of the paper (`all`), extensions left out."""
        return [t for t in self.targets.values() if not t.extension]

    def run_tables(self) -> list[str]:
        """Tidy CSVs of every run of a benchmark (NIAH: every cell of every run)."""
        if any(r.benchmark == "niah" for t in self.paper_targets() for r in t.runs):
            return ["paper_figures/niah_all_runs.csv"]
        return []

    def benchmark_result_files(self, benchmark: str) -> list[str]:
        """The result files of every run of one benchmark that a paper target uses, in the
        order of the config (extensions have their own figures' CSVs)."""
        files: list[str] = []
        for target in self.paper_targets():
            for run in target.runs:
                if run.benchmark == benchmark:
                    files.extend(f for f in self.result_files(run) if f not in files)
        return files

    def checkpoint(self, model: str, ntk_lambda: float = 1.0) -> str:
        """The file that stands for a ready checkpoint; its directory is the model path."""
        if ntk_lambda == 1:
            return f"{self.checkpoint_dir}/{model}/download.json"
        return f"{self.checkpoint_dir}/{model}/ntk{rope.format_lambda(ntk_lambda)}/rope_patch.json"

    def target_inputs(self, name: str) -> list[str]:
        files: list[str] = []
        for run in self.targets[name].runs:
            files.extend(f for f in self.result_files(run) if f not in files)
        return files

    def paper_runs(self) -> set[Run]:
        """The runs of the paper's targets (`all`), extensions left out."""
        return {r for t in self.paper_targets() for r in t.runs}

    def all_checkpoints(self) -> list[str]:
        """The checkpoints of the paper's runs (`snakemake checkpoints`; an extension's come
        with it)."""
        wanted = {(r.model, r.ntk_lambda) for r in self.paper_runs()}
        return sorted(self.checkpoint(m, lam) for m, lam in wanted)

    def run_for(self, benchmark: str, model: str, setting: str) -> Run:
        try:
            return self.runs[(benchmark, model, setting)]
        except KeyError:
            raise ConfigError(
                f"no {benchmark} run of {model} with setting {setting!r} in the config"
            ) from None
