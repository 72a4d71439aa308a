"""LongBench (Tables 1 and 3): its 21 subsets, their categories, sizes and output lengths, and
scoring through OpenCompass.

Where each fact comes from:
- categories: the paper's table columns (TARGETS.md: SD, MD, Sum, ICL, Syn, Code);
- n_samples: the number of test samples of each subset in THUDM/LongBench (200; multifieldqa_en
  150; lcc and repobench-p 500);
- max_new_tokens: max_out_len of the subset's OpenCompass 0.5.4 config (GenInferencer), kept
  here because config.py and budget.py need it without the OpenCompass environment;
  tests/test_longbench_oc.py checks every one against `subset_facts`. They equal LongBench's
  own budgets except qasper: OpenCompass gives it 32 tokens (and the generic multi-document QA
  prompt), LongBench 128;
- prompt templates, input columns, evaluators (class and arguments), prediction postprocessors
  and the dataset names: never typed in here, read from the installed OpenCompass's configs
  at run time (`subset_facts`, oc_side/longbench_facts.py: longbench.py and the per-subset
  configs it includes);
- per-sample scores: OpenCompass's LongBench evaluators themselves (`score_predictions`,
  oc_side/longbench_score.py), after the config's postprocessor (trec, triviaqa, samsum, lsht:
  the first line of the answer).
Aggregation: a category is the mean of its subsets; Avg is the mean of the 21 subsets (the
published Avg is neither that nor the mean of the categories; BENCHMARKS.md).

Standard library only: this also runs in the OpenCompass environment.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from longllada import files, opencompass_env
from longllada.files import sha256_file, write_json
from longllada.jobs import join_shards, read_jsonl

OC_SIDE = Path(__file__).resolve().parents[1] / "oc_side"
FACTS_SCRIPT = OC_SIDE / "longbench_facts.py"
SCORER = OC_SIDE / "longbench_score.py"
PROMPTER = OC_SIDE / "longbench_prompts.py"


class Subset(NamedTuple):
    category: str  # SD, MD, Sum, ICL, Syn, Code (the paper's table columns)
    n_samples: int
    max_new_tokens: int  # the OpenCompass config's max_out_len


SUBSETS: dict[str, Subset] = {
    "narrativeqa": Subset("SD", 200, 128),
    "qasper": Subset("SD", 200, 32),
    "multifieldqa_en": Subset("SD", 150, 64),
    "multifieldqa_zh": Subset("SD", 200, 64),
    "hotpotqa": Subset("MD", 200, 32),
    "2wikimqa": Subset("MD", 200, 32),
    "musique": Subset("MD", 200, 32),
    "dureader": Subset("MD", 200, 128),
    "gov_report": Subset("Sum", 200, 512),
    "qmsum": Subset("Sum", 200, 512),
    "multi_news": Subset("Sum", 200, 512),
    "vcsum": Subset("Sum", 200, 512),
    "trec": Subset("ICL", 200, 64),
    "triviaqa": Subset("ICL", 200, 32),
    "samsum": Subset("ICL", 200, 128),
    "lsht": Subset("ICL", 200, 64),
    "passage_count": Subset("Syn", 200, 32),
    "passage_retrieval_en": Subset("Syn", 200, 32),
    "passage_retrieval_zh": Subset("Syn", 200, 32),
    "lcc": Subset("Code", 500, 64),
    "repobench-p": Subset("Code", 500, 64),
}
CATEGORIES = ("SD", "MD", "Sum", "ICL", "Syn", "Code")
# The prompt field naming the official OpenCompass task of a row (the prompts job reads it from
# OpenCompass's SizePartitioner): each task seeded the random stream anew, so generation
# restarts its stream where this field changes, and nowhere else.
RNG_GROUP = "oc_task"


def answer_tokens(subset: str, cfg: Mapping[str, Any] | None = None) -> int:
    """A subset's answer length: OpenCompass's max_out_len, capped by the config's
    `max_new_tokens_cap` where one is set (the demo's, to keep 512-step summaries off a CPU)."""
    cap = (cfg or {}).get("max_new_tokens_cap")
    n = SUBSETS[subset].max_new_tokens
    return n if cap is None else min(n, int(cap))


def _check_subsets(names: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(SUBSETS))
    if unknown:
        raise ValueError(
            f"unknown LongBench subset(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(SUBSETS)}"
        )


def subset_facts(prepared: Mapping[str, Any], timeout: float = 600) -> dict[str, dict[str, Any]]:
    """{subset: what its OpenCompass config says} in one OpenCompass process: config (the file
    that defines it, under opencompass/configs/datasets/longbench/), chain (the read_base
    includes from longbench.py to it), abbr, name (what OpenCompass passes to the dataset
    class), template (the HUMAN round, verbatim), placeholders, input_columns, output_column,
    max_out_len, evaluator, evaluator_kwargs, pred_postprocessor (name or None) and the rest of
    oc_side/longbench_facts.py's fields."""
    with tempfile.TemporaryDirectory(prefix="longbench_facts_") as tmp:
        out = Path(tmp) / "facts.json"
        res = opencompass_env.run_script(dict(prepared), FACTS_SCRIPT, out, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"LongBench facts failed: {res.stderr.strip()[-3000:]}")
        return json.loads(out.read_text(encoding="utf-8"))["subsets"]


def score_predictions(
    rows: Iterable[Mapping[str, Any]], prepared: Mapping[str, Any], timeout: float = 3600
) -> list[dict[str, Any]]:
    """Score rows (`id`, `subset`, `prediction`, `answers`, and `all_classes` for trec and
    lsht) in one OpenCompass process; returns per row id, subset, score (0-100), the
    evaluator's name and the postprocessed prediction, in the order given."""
    rows = [{"all_classes": None, **r} for r in rows]  # the jsonl has null outside trec, lsht
    _check_subsets(r["subset"] for r in rows)
    keys = ("id", "subset", "prediction", "answers", "all_classes")
    return opencompass_env.score_rows(dict(prepared), SCORER, rows, keys, "LongBench", timeout)


def category_scores(subset_scores: Mapping[str, float]) -> dict[str, float | None]:
    """{category: the mean of its subsets' scores} for the six categories, in table order;
    None for a category with a subset missing."""
    _check_subsets(subset_scores)
    out: dict[str, float | None] = {}
    for category in CATEGORIES:
        members = [name for name, s in SUBSETS.items() if s.category == category]
        if all(name in subset_scores for name in members):
            out[category] = sum(float(subset_scores[n]) for n in members) / len(members)
        else:
            out[category] = None
    return out


def average(subset_scores: Mapping[str, float]) -> float | None:
    """Avg as we report it: the mean of the 21 subsets' scores (None if any is missing). Not
    the mean of the categories, which weighs Syn's and Code's subsets more."""
    _check_subsets(subset_scores)
    if any(name not in subset_scores for name in SUBSETS):
        return None
    return sum(float(subset_scores[n]) for n in SUBSETS) / len(SUBSETS)


# --- the pipeline's stages ----------------------------------------------------------------------


def unit_name(context: str, subset: str) -> str:
    """A (context, subset) generation unit: 4k_narrativeqa (its prompts file is the subset's)."""
    return f"{context}_{subset}"


def split_unit(unit: str) -> tuple[str, str]:
    """(context, subset) of a unit name, shard suffix allowed (4k_lcc.samples0-250)."""
    context, subset = unit.split(".samples", 1)[0].split("_", 1)
    _check_subsets([subset])
    return context, subset


def make_prompts(
    data_manifest: str | Path,
    subset: str,
    out: str | Path,
    meta_out: str | Path,
    prepared: Mapping[str, Any],
    timeout: float = 1800,
) -> dict[str, Any]:
    """The prompts rule: one subset's prompts, whole (each model's generation job cuts them to
    its context budget in its own tokens), made by OpenCompass's dataset class and prompt
    template (oc_side/longbench_prompts.py) from the jsonl, which is checked here first (a bad
    line is named by file and line); each row names its official OpenCompass task (`oc_task`,
    RNG_GROUP), cut by OpenCompass's own SizePartitioner with the paper's arguments. Beside it:
    the data file's sha256, what the prompts came from (config entry, template, max_out_len),
    the partitioner (class, arguments, tasks) and the OpenCompass env's versions."""
    from longllada.benchmarks import longbench_data  # it imports this module

    _check_subsets([subset])
    name = f"{subset}.jsonl"
    manifest = files.read_data_manifest(data_manifest, (name,), longbench_data.LongBenchDataError)
    data_file = Path(manifest["dir"]) / name
    records = longbench_data.read_subset(data_file, subset)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="longbench_prompts_") as tmp:
        spec = {
            "data_file": str(data_file.resolve()),
            "subset": subset,
            "out": str(out.resolve()),
            "params_out": str(Path(tmp) / "params.json"),
        }
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        try:
            res = opencompass_env.run_script(dict(prepared), PROMPTER, spec_path, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"LongBench {subset} prompts ran past {timeout:g} s") from None
        last = (res.stderr.strip().splitlines() or [""])[-1].removeprefix("error: ")
        if res.returncode == 3:
            raise longbench_data.LongBenchDataError(last)
        if res.returncode == 2:
            raise ValueError(last)
        if res.returncode != 0:
            raise RuntimeError(f"LongBench prompts ({subset}) failed: {res.stderr[-3000:]}")
        params = json.loads(Path(spec["params_out"]).read_text(encoding="utf-8"))
    if params["max_out_len"] != SUBSETS[subset].max_new_tokens:
        raise RuntimeError(
            f"OpenCompass's {subset} config generates {params['max_out_len']} tokens, "
            f"longbench.SUBSETS says {SUBSETS[subset].max_new_tokens}: update SUBSETS"
        )
    rows = list(read_jsonl(out))
    if len(rows) != len(records):
        raise RuntimeError(f"{out}: {len(rows)} prompts from {len(records)} records")
    partitioner = params.pop("partitioner")
    tasks = [t["oc_task"] for t in partitioner["tasks"] for _ in range(t["first"], t["stop"])]
    if [r.get(RNG_GROUP) for r in rows] != tasks:
        raise RuntimeError(f"{out}: the rows' {RNG_GROUP} are not the partitioner's tasks")
    meta = {
        "benchmark": "longbench",
        "subset": subset,
        "category": SUBSETS[subset].category,
        "rows": len(rows),
        "prompts_sha256": sha256_file(out),
        "opencompass_entry": params,
        # the official run's tasks, each of which seeded the random stream anew
        "partitioner": partitioner,
        "data": {
            "source": manifest["source"],
            "file": name,
            "sha256": manifest["files"][name]["sha256"],
        },
        **opencompass_env.versions_record(dict(prepared)),
    }
    write_json(meta_out, meta)
    return meta


def join_predictions(
    prompt_files: Iterable[str | Path],
    prediction_files: Iterable[str | Path],
    contexts: Mapping[str, int],
    limit: int | None,
) -> list[dict[str, Any]]:
    """The selected prompts of every (context, subset) with their answers, in prompt order; the
    shards of a unit must together answer exactly its selected prompts."""
    by_subset = {Path(p).name.removesuffix(".jsonl"): p for p in prompt_files}
    prediction_files = list(prediction_files)
    units = {
        unit_name(c, s): by_subset[s]
        for c in contexts
        for s in by_subset
        if any(Path(p).name.startswith(unit_name(c, s) + ".") for p in prediction_files)
    }
    rows = []
    for unit, prompt, pred in join_shards(units, prediction_files, limit):
        context, subset = split_unit(unit)
        rows.append(
            {
                "id": f"{context}_{prompt['id']}",  # a prompt is answered once per context
                "prompt_id": prompt["id"],
                "context": context,
                "budget": int(contexts[context]),
                "subset": subset,
                "index": prompt["index"],
                "answers": prompt["answers"],
                "all_classes": prompt.get("all_classes"),
                "prediction": pred["prediction"],
                "prompt_tokens": pred.get("prompt_tokens"),
                "prompt_tokens_before_truncation": pred.get("prompt_tokens_before_truncation"),
                "truncated": bool(pred.get("truncated", False)),
            }
        )
    return rows


def score_run(
    prompt_files: Iterable[str | Path],
    prediction_files: Iterable[str | Path],
    generation_records: Iterable[str | Path],
    output: str | Path,
    run_info: Mapping[str, Any],
    prepared: Mapping[str, Any],
) -> dict[str, Any]:
    """The score rule: every (context, subset) of one run, scored by OpenCompass's LongBench
    evaluators in one process, each sample's score kept; per (context, subset) the mean x 100
    (the evaluators' own subset score). `run_info`: model, setting, family, ntk_lambda,
    sampler, sample_limit, contexts (label -> budget)."""
    prompt_files = list(prompt_files)
    prediction_files = list(prediction_files)
    contexts = dict(run_info["contexts"])
    limit = run_info.get("sample_limit")
    joined = join_predictions(prompt_files, prediction_files, contexts, limit)
    scored = score_predictions(joined, prepared)
    for row, s in zip(joined, scored, strict=True):
        row["score"] = s["score"]
        row["detail"] = {k: v for k, v in s.items() if k not in ("id", "subset", "score")}
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in joined:
        cells.setdefault((row["context"], row["subset"]), []).append(row)
    result = {
        "benchmark": "longbench",
        **{k: run_info[k] for k in ("model", "setting", "family", "ntk_lambda", "sampler")},
        "sample_limit": limit,
        "contexts": contexts,
        "n_samples": len(joined),
        "n_full": len(contexts) * sum(sum(1 for _ in read_jsonl(p)) for p in prompt_files),
        "subsets": [
            {
                "context": context,
                "budget": int(contexts[context]),
                "subset": subset,
                "category": SUBSETS[subset].category,
                "score": sum(r["score"] for r in rows) / len(rows),
                "n": len(rows),
                "truncated": sum(r["truncated"] for r in rows),
            }
            for (context, subset), rows in cells.items()
        ],
        "samples": joined,
        "provenance": opencompass_env.score_provenance(
            "longbench_score",
            "opencompass LongBench evaluators (the configs' evaluators and postprocessors)",
            dict(prepared),
            list(generation_records),
            [*prompt_files, *prediction_files],
        ),
    }
    write_json(output, result)
    return result
