"""Benchmark generation jobs: one model, one prompts file, one answer per prompt (GPU).

NIAH uses it today; RULER and LongBench reuse it. What the paper's runs did (BENCHMARKS.md, "the
wrapper"), and so what this does by default:

- the raw prompt text, no chat template (instruct models too), tokenised with the model's own
  tokenizer, `add_special_tokens=True, truncation=True` (which cuts at the tokenizer's
  `model_max_length`: 1e30 for LLaMA 3 and LLaDA, 131072 for Dream, so nothing is cut at the
  paper's lengths; a cut is logged and recorded per sample);
- Dream's `bos_token` string put before the prompt on NIAH and RULER (not on LongBench, unless
  its `dream_bos` setting asks for it);
- LongBench: the whole prompt tokenised, one longer than the context's budget keeping its first
  and last halves of token ids (`drop_middle`); both lengths recorded per sample;
- LLaDA: the answer rounded up to whole blocks, steps capped at its length, the block sampler;
  Dream: steps capped at the answer length, entropy / T 0.2 / top-p 0.95 and the official
  Categorical check with its greedy fallback (`sampling: paper`); LLaMA 3: greedy;
- decoded with `skip_special_tokens=True`; Dream's text split at its eos string.

The random stream: the official model wrapper seeded torch once, when an OpenCompass task built
the model, and ran the task's samples in order; the partitioner decided the tasks (BENCHMARKS.md,
"Facts found later"). NIAH: one task per length and depth; RULER: one per (task, length) file,
its 100 samples never restarted; LongBench: `SizePartitioner(max_task_size=1000,
gen_task_coef=15)` cut each subset into tasks of 50 (63 for lcc and repobench-p), which the
prompts job records per row (`oc_task`, from OpenCompass's own partitioner). Here a generator
seeded with the config's seed restarts where the prompt field `rng_group` changes (depth,
oc_task; none: one stream per file) and nowhere else, whatever our own sharding: a shard whose
first sample continues a stream (RULER's second half, a LongBench shard point inside an official
task) starts from the state the previous shard ended with (`continue_from`: that shard's
predictions, whose rows store the state after each sample), so a Dream run's shards are chained
and together draw what one unsharded job draws. A resumed job restores the state saved with the
sample before, so a killed job resumes the same stream. Only Dream draws random numbers at the
paper's settings; LLaDA (temperature 0) and LLaMA (greedy) shards need no chain.

Each finished sample is appended to the job's `.partial` (`longllada.jobs`) with its prompt
length in model tokens, the tokens generated, the seconds it took and (Dream) the sampling calls
and greedy fallbacks; the predictions file appears when all are done, with a provenance file
beside it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from longllada import fingerprints, provenance
from longllada.benchmarks.longbench_data import check_budget, drop_middle
from longllada.config import Model, Run, generation_record
from longllada.files import canonical, digest, read_json, write_json
from longllada.jobs import read_jsonl, run_resumable, select_samples
from longllada.sampling import dream as dream_sampling
from longllada.sampling import llada as llada_sampling
from longllada.sampling.autoregressive import generate_greedy
from longllada.stages.common import load_run_model, run_settings

log = logging.getLogger(__name__)

# Benchmarks on which the official wrapper put Dream's bos string before the prompt (its
# drop-middle LongBench path skipped it).
DREAM_BOS_BENCHMARKS = ("niah", "ruler")
STEPS_PER_TOKEN = "gen_length"


class PromptsError(ValueError):
    """A prompts file that cannot be generated from (named in the message)."""


class ChainError(ValueError):
    """A shard whose random stream cannot continue from the file given as the shard before it
    (both files named in the message)."""


def provenance_path(output: str | Path) -> Path:
    """The provenance file beside a predictions file (a declared output of the rule)."""
    return Path(generation_record(output))


def read_prompts(path: str | Path) -> list[dict[str, Any]]:
    """The prompt rows of a prompts file; every row needs an id and a prompt string."""
    rows = []
    for n, row in enumerate(read_jsonl(path), 1):
        for key in ("id", "prompt"):
            if key not in row:
                raise PromptsError(f"{path}: row {n} has no {key!r}")
        if not isinstance(row["prompt"], str):
            raise PromptsError(f"{path}: row {n} ({row['id']}): the prompt is not a string")
        rows.append(row)
    if not rows:
        raise PromptsError(f"{path}: no prompts")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise PromptsError(f"{path}: prompt ids are not unique")
    return rows


# --- tokenisation and decoding, as the official wrapper did ----------------------------------


def encode_prompt(
    tokenizer: Any,
    text: str,
    family: str,
    benchmark: str,
    budget: int | None = None,
    dream_bos: bool | None = None,
) -> tuple[list[int], int]:
    """(token ids the model sees, ids before truncation) for one raw prompt.

    `budget` (LongBench): the whole prompt is tokenised, and one longer than `budget` keeps its
    first and last halves (`drop_middle`), as the official drop-middle path did. `dream_bos`:
    put Dream's bos string first (default: on NIAH and RULER only, as the official runs)."""
    if dream_bos is None:
        dream_bos = benchmark in DREAM_BOS_BENCHMARKS
    if family == "dream" and dream_bos:
        text = tokenizer.bos_token + text
    if budget is not None:
        whole = list(tokenizer(text, add_special_tokens=True)["input_ids"])
        return drop_middle(whole, budget), len(whole)
    ids = tokenizer(text, add_special_tokens=True, truncation=True)["input_ids"]
    full = len(ids)
    if full >= (tokenizer.model_max_length or 0):  # cut (or exactly at the limit): count it
        full = len(tokenizer(text, add_special_tokens=True)["input_ids"])
    return list(ids), full


def check_template_budget(
    tokenizer: Any, samples: list[dict[str, Any]], budget: int, prompts_file: str | Path
) -> None:
    """A context's budget must hold the template's own tokens (its text with empty fields), or
    drop_middle would cut into the instructions: PromptsError naming file and budget."""
    templates = {s["template_prompt"] for s in samples if "template_prompt" in s}
    for text in templates:
        n = len(tokenizer(text, add_special_tokens=True)["input_ids"])
        try:
            check_budget(int(budget), n)
        except ValueError as e:
            raise PromptsError(f"{prompts_file}: {e} (raise the context's budget)") from None


def decode_answer(tokenizer: Any, ids: list[int], family: str) -> str:
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if family == "dream":
        # What the official wrapper did; the eos is special, so this cuts only if a decoded
        # string happens to spell it.
        text = text.split(tokenizer.eos_token)[0]
    return text


# --- the samplers, as the paper ran them -------------------------------------------------------


@dataclass
class Decoding:
    """One family's sampler for one answer length, with the settings actually applied."""

    family: str
    max_new_tokens: int
    applied: dict[str, Any]  # what the official wrapper ends up passing (rounded, capped)
    uses_rng: bool
    generate: Callable[[Any, torch.Tensor, torch.Generator, dict[str, int]], torch.Tensor]


def decoding_for(family: str, sampler: dict[str, Any], max_new_tokens: int) -> Decoding:
    """The sampler of a run's family for answers of `max_new_tokens`."""
    if family == "llada":
        gen_length = llada_sampling.official_gen_length(max_new_tokens, sampler["block_length"])
        steps = sampler["steps"]
        steps = gen_length if steps == STEPS_PER_TOKEN else min(int(steps), gen_length)
        s = llada_sampling.LLaDASettings(
            steps=steps,
            block_length=sampler["block_length"],
            temperature=sampler.get("temperature", 0.0),
            cfg_scale=sampler.get("cfg_scale", 0.0),
            remasking=sampler.get("remasking", "low_confidence"),
        )

        def gen_llada(net: Any, prompt: torch.Tensor, g: torch.Generator, _stats: dict) -> Any:
            return llada_sampling.generate(net, prompt, gen_length, s, generator=g)

        return Decoding(
            family,
            max_new_tokens,
            {"gen_length": gen_length, **asdict(s)},
            uses_rng=s.temperature > 0 or s.remasking == "random",
            generate=gen_llada,
        )
    if family == "dream":
        steps = sampler["steps"]
        steps = max_new_tokens if steps == STEPS_PER_TOKEN else min(int(steps), max_new_tokens)
        d = dream_sampling.DreamSettings(
            steps=steps,
            alg=sampler.get("alg", "entropy"),
            temperature=sampler.get("temperature", 0.2),
            top_p=sampler.get("top_p", 0.95),
            sampling=sampler.get("sampling", "paper"),
        )

        def gen_dream(net: Any, prompt: torch.Tensor, g: torch.Generator, stats: dict) -> Any:
            return dream_sampling.generate(net, prompt, max_new_tokens, d, generator=g, stats=stats)

        return Decoding(
            family,
            max_new_tokens,
            {"gen_length": max_new_tokens, **asdict(d)},
            uses_rng=d.temperature > 0 or d.alg == "origin" or bool(d.alg_temp),
            generate=gen_dream,
        )

    def gen_ar(net: Any, prompt: torch.Tensor, _g: torch.Generator, _stats: dict) -> Any:
        return generate_greedy(net, prompt, max_new_tokens)

    return Decoding(family, max_new_tokens, {"max_new_tokens": max_new_tokens}, False, gen_ar)


def _state_hex(g: torch.Generator) -> str:
    return bytes(g.get_state().tolist()).hex()


def _set_state(g: torch.Generator, hex_state: str) -> None:
    g.set_state(torch.tensor(list(bytes.fromhex(hex_state)), dtype=torch.uint8))


# --- the job -------------------------------------------------------------------------------------


def run(
    model: Model,
    run: Run,
    settings: dict[str, Any],
    checkpoint_file: str | Path,
    prompts_file: str | Path,
    output: str | Path,
    seed: int,
    max_new_tokens: int,
    rng_group: str | None = None,
    spread_by: str | None = None,
    depends_on: str | None = None,
    sample_range: tuple[int, int] | None = None,
    budget: int | None = None,
    continue_from: str | Path | None = None,
) -> dict[str, Any]:
    """Generate an answer to every (selected) prompt of `prompts_file` into `output`.

    `settings`: the benchmark's config section (`sample_limit`, `dtype`...). `rng_group`: the
    prompt field whose value changes where the official runs started a new task (the
    generator restarts from `seed` there; every selected row must have it); None: one stream
    for the file. `spread_by`: see `select_samples`. `sample_range`: [first, stop) of the
    selected samples, for a job split into shards (RULER, LongBench). A shard whose first
    sample continues its group's stream needs `continue_from`: the predictions file of the
    shard just before it (its range must stop at `first`, under the same prompts, checkpoint,
    seed and sampler), whose rows carry the generator state to continue from (ChainError
    otherwise, naming both files); a sampler that draws no random numbers needs none.
    `budget` (LongBench): prompts longer than this many tokens of the model lose their middle
    (`encode_prompt`); Dream's bos string then goes first only with the setting `dream_bos`.
    Returns the provenance record written beside the output.
    """
    watch = provenance.Stopwatch()
    settings = dict(settings or {})
    if depends_on is None:
        depends_on = fingerprints.canonical(fingerprints.compute(model, run, settings, seed))
    header = fingerprints.partial_header(
        depends_on, {"checkpoint": checkpoint_file, "prompts": prompts_file}
    )
    rows = read_prompts(prompts_file)
    selected_rows = select_samples(rows, settings.get("sample_limit"), spread_by)
    selected = len(selected_rows)
    first, stop = 0, selected
    if sample_range is not None:
        first, stop = (int(x) for x in sample_range)
        if not 0 <= first < stop <= selected:
            raise PromptsError(
                f"{prompts_file}: samples {first}-{stop} are not a range of its {selected} "
                "selected samples (the config's samples or sample_limit changed?)"
            )
    samples = selected_rows[first:stop]
    if rng_group is not None:
        lacking = [s["id"] for s in selected_rows if rng_group not in s]
        if lacking:
            raise PromptsError(
                f"{prompts_file}: {len(lacking)} row(s) without the field {rng_group!r} that "
                f"marks where the random stream restarts (e.g. {lacking[:3]}): remake the prompts"
            )
    decoding = decoding_for(model.family, dict(run.sampler), max_new_tokens)

    # Which sample's state each sample's generator starts from: the sample before it in its
    # group, over all the selected samples (None: seeded there), wherever the shards cut.
    before: dict[Any, Any] = {}
    previous: dict[Any, Any] = {}
    for s in selected_rows:
        group = s.get(rng_group) if rng_group else None
        before[s["id"]] = previous.get(group)
        previous[group] = s["id"]
    # the samples before this shard whose streams it continues (at most its first's, as the
    # groups run in file order): their states come from the shard before (`continue_from`)
    in_job = {s["id"] for s in samples}
    carried = [
        before[s["id"]]
        for s in samples
        if before[s["id"]] is not None and before[s["id"]] not in in_job
    ]
    chain = _chain_states(
        continue_from,
        output,
        header,
        carried if decoding.uses_rng else [],
        [s["id"] for s in selected_rows],
        (first, stop),
        seed,
        decoding,
        rng_group,
    )
    if chain:  # the stream continues another file's: its state is what this job depends on
        header = {
            **header,
            "continues": {i: digest(state) for i, state in sorted(chain.items())},
        }

    dream_bos = settings.get("dream_bos") if budget is not None else None
    net, tokenizer, prov = load_run_model(model, checkpoint_file, settings.get("dtype"))
    device = next(net.parameters()).device
    if budget is not None:
        check_template_budget(tokenizer, samples, budget, prompts_file)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)  # (a sampler without random numbers never reads it)
    state = {"done": {}, "last": object()}

    def on_resume(done: dict[Any, dict[str, Any]]) -> None:
        state["done"] = done

    def one(sample: dict[str, Any]) -> dict[str, Any]:
        pred = before[sample["id"]]
        if pred is None:
            generator.manual_seed(seed)
        elif state["last"] != pred and decoding.uses_rng:
            saved = chain.get(pred) or state["done"].get(pred, {}).get("rng_state")
            if saved is None:
                raise RuntimeError(
                    f"{output}: sample {pred!r} in the partial file has no rng_state"
                )
            _set_state(generator, saved)
        ids, untruncated = encode_prompt(
            tokenizer, sample["prompt"], model.family, run.benchmark, budget, dream_bos
        )
        if untruncated > len(ids) and budget is None:
            log.warning(
                "%s: prompt cut from %d to %d tokens by the tokenizer's model_max_length "
                "(truncation=True, as the official wrapper)",
                sample["id"],
                untruncated,
                len(ids),
            )
        prompt = torch.tensor([ids], dtype=torch.long, device=device)
        stats: dict[str, int] = {}
        _sync(device)
        t0 = time.perf_counter()
        out = decoding.generate(net, prompt, generator, stats)
        _sync(device)
        seconds = time.perf_counter() - t0
        new_ids = out[0].tolist()
        row: dict[str, Any] = {
            "id": sample["id"],
            "prediction": decode_answer(tokenizer, new_ids, model.family),
            "prompt_tokens": len(ids),
            "generated_tokens": len(new_ids),
            "seconds": round(seconds, 4),
        }
        if untruncated > len(ids) or budget is not None:  # LongBench: always both lengths
            row["prompt_tokens_before_truncation"] = untruncated
            row["truncated"] = untruncated > len(ids)
        if stats:
            row.update(stats)
        if decoding.uses_rng:
            row["rng_state"] = _state_hex(generator)
        state["last"] = sample["id"]
        return row

    computed = run_resumable(samples, one, output, settings=header, on_resume=on_resume)
    rows_out = list(read_jsonl(output))
    totals = _totals(rows_out)
    stream = None
    if decoding.uses_rng:
        stream = {
            "seeded_at": [s["id"] for s in samples if before[s["id"]] is None],
            "continued_from": None
            if not chain
            else {"file": Path(continue_from).name, "samples": sorted(chain)},
        }
    record = provenance.record(
        f"{run.benchmark}_generate",
        watch=watch,
        model=prov["model"],
        rope=prov["rope"],
        settings={
            **run_settings(run, settings),
            "dtype": prov["dtype"],
            "applied": decoding.applied,
            "max_new_tokens": max_new_tokens,
            "rng_group": rng_group,
            "rng_stream": stream,
            "truncation": None if budget is None else {"drop_middle": int(budget)},
            "dream_bos_string": model.family == "dream"
            and (run.benchmark in DREAM_BOS_BENCHMARKS if dream_bos is None else bool(dream_bos)),
        },
        seed=seed,
        depends_on=header,
        samples={
            "selected": selected,
            "range": list(sample_range) if sample_range is not None else None,
            "in_job": len(samples),
            "in_prompts_file": len(rows),
            "computed_now": computed,
        },
        totals=totals,
    )
    write_json(provenance_path(output), record)
    log.info(
        "%s %s: %d answers (%d now), %.1f s generating",
        model.key,
        Path(output).name,
        len(rows_out),
        computed,
        totals["seconds"],
    )
    return record


def _chain_states(
    continue_from: str | Path | None,
    output: str | Path,
    header: dict[str, Any],
    carried: list[Any],
    selected_ids: list[Any],
    shard: tuple[int, int],
    seed: int,
    decoding: Decoding,
    rng_group: str | None,
) -> dict[Any, str]:
    """{sample id: its saved generator state} of the samples before this shard whose streams
    this shard continues (`carried`), read from `continue_from`, the shard before it; checked
    to be that shard (ChainError naming both files)."""
    first, stop = shard
    if continue_from is None:
        if carried:
            raise ChainError(
                f"{output}: samples {first}-{stop} continue the random stream of sample "
                f"{carried[0]!r}, generated by the shard before this one: give that shard's "
                "predictions file (continue_from), so that the stream goes on from its state"
            )
        return {}
    continue_from = Path(continue_from)
    where = (
        f"{output} (samples {first}-{stop}) cannot continue the random stream of {continue_from}"
    )
    record_file = provenance_path(continue_from)
    if not continue_from.exists() or not record_file.exists():
        raise ChainError(f"{where}: it or its provenance file {record_file.name} does not exist")
    record = read_json(record_file)
    samples = record.get("samples") or {}
    settings = record.get("settings") or {}
    span = samples.get("range") or [0, samples.get("selected")]
    problems = []
    if span[1] != first:
        problems.append(
            f"it holds samples {span[0]}-{span[1]}, so it is not the shard just before this "
            f"one (which must stop at sample {first})"
        )
    if samples.get("selected") != len(selected_ids):
        problems.append(
            f"it was cut from {samples.get('selected')} selected samples, this job from "
            f"{len(selected_ids)}"
        )
    theirs = (record.get("depends_on") or {}).get("inputs")
    if theirs != header["inputs"]:
        problems.append("its prompts file or checkpoint differs (sha256)")
    if (
        record.get("seed") != seed
        or settings.get("applied") != json.loads(canonical(decoding.applied))
        or settings.get("rng_group") != rng_group
    ):
        problems.append("it was generated under another seed, sampler or rng_group")
    if problems:
        raise ChainError(f"{where}: " + "; ".join(problems))
    rows = {r["id"]: r for r in read_jsonl(continue_from)}
    if list(rows) != selected_ids[span[0] : span[1]]:
        raise ChainError(f"{where}: its answers are not those of samples {span[0]}-{span[1]}")
    states = {}
    for pred in carried:
        state = rows.get(pred, {}).get("rng_state")
        if state is None:
            raise ChainError(
                f"{where}: it has no rng_state after sample {pred!r}, whose stream this shard "
                "continues"
            )
        states[pred] = state
    return states


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "samples": len(rows),
        "seconds": round(sum(r["seconds"] for r in rows), 3),
        "prompt_tokens_max": max(r["prompt_tokens"] for r in rows),
        "generated_tokens": sum(r["generated_tokens"] for r in rows),
        "truncated_prompts": sum(
            bool(r.get("truncated", "prompt_tokens_before_truncation" in r)) for r in rows
        ),
    }
    for key in ("sampling_calls", "greedy_fallbacks"):
        if any(key in r for r in rows):
            out[key] = sum(r.get(key, 0) for r in rows)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
