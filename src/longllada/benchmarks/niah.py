"""NeedleBench NIAH (Figures 1b, 2, 3, 6-11): scoring through OpenCompass, and the aggregation.

Scoring is OpenCompass's NeedleBenchOriginEvaluator itself, run in the OpenCompass environment
(oc_side/niah_score.py): 100 if the keyword is in the raw answer, else 0.2 x the edit similarity
of answer and needle with all whitespace removed. The aggregation is the paper's plotting code's
(BENCHMARKS.md): a cell is the mean of its repeats, the Average Depth Score of a length the mean
over its depths (Figure 1b), the Overall Score the mean of all cells.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from longllada import files, opencompass_env
from longllada.files import sha256_file, write_json
from longllada.jobs import read_answers, read_jsonl, select_samples

SCORER = Path(__file__).resolve().parents[1] / "oc_side" / "niah_score.py"
PROMPTER = Path(__file__).resolve().parents[1] / "oc_side" / "niah_prompts.py"
HAYSTACK = "en_un_asr.jsonl"  # the paper's (UN speech transcripts), NeedleBench's file name
NEEDLES = "needles.jsonl"
LENGTH_BUFFER = 600  # tokens OpenCompass leaves for the question (the paper's setting)


class NiahDataError(ValueError):
    """A NeedleBench data file that cannot make the prompts asked for (named in the message)."""


def build_prompts(
    data_dir: str | Path,
    length: int,
    depths: Iterable[int],
    repeats: int,
    out: str | Path,
    prepared: Mapping[str, Any],
    timeout: float = 3600,
    length_buffer: int = LENGTH_BUFFER,
) -> None:
    """One prompts JSONL for one length, every depth and repeat, by OpenCompass's
    NeedleBenchOriginDataset in one OpenCompass process (oc_side/niah_prompts.py).
    `length_buffer`: the tokens OpenCompass leaves for the question (the paper's 600; the
    demo's short lengths need less)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "data_dir": str(Path(data_dir).resolve()),
        "haystack": HAYSTACK,
        "needles": NEEDLES,
        "length": int(length),
        "depths": [int(d) for d in depths],
        "repeats": int(repeats),
        "length_buffer": int(length_buffer),
        "out": str(out.resolve()),
    }
    with tempfile.TemporaryDirectory(prefix="niah_prompts_") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        res = opencompass_env.run_script(prepared, PROMPTER, spec_path, timeout=timeout)
    if res.returncode == 3:
        raise NiahDataError(res.stderr.strip().removeprefix("error: "))
    if res.returncode != 0:
        raise RuntimeError(f"NIAH prompts failed: {res.stderr.strip()[-3000:]}")


def write_demo_data(out_dir: str | Path, prose: str | Iterable[str], n_needles: int = 3) -> Path:
    """NeedleBench-format files for the demo and tests: a haystack of real prose and needles
    whose questions end in the real answer-format blank. `prose`: the haystack's records
    (e.g. one Paul Graham essay each, `longllada.prose`), or one text, one record a paragraph."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(prose, str):
        prose = prose.split("\n")
    records = [p.strip() for p in prose if p.strip()]
    with open(out_dir / HAYSTACK, "w", encoding="utf-8") as f:
        for text in records:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    places = ["Emerald Island", "Mount Vesper", "the Amber Coast"][:n_needles]
    items = ["Stardust Shard", "Silver Compass", "Copper Lantern"][:n_needles]
    with open(out_dir / NEEDLES, "w", encoding="utf-8") as f:
        for place, item in zip(places, items, strict=True):
            needle = f"Hidden on {place} is the legendary {item}."
            question = (
                f"What legendary item is hidden on {place}?\nPlease answer in the format "
                f"'The legendary item hidden on {place} is ________.'"
            )
            row = {"needle": needle, "retrieval_question": question, "arg2": item}
            f.write(json.dumps({**row, "language": "English"}) + "\n")
    return out_dir


def score_predictions(
    rows: Iterable[Mapping[str, Any]], prepared: Mapping[str, Any], timeout: float = 3600
) -> list[dict[str, Any]]:
    """Score rows (`id`, `prediction`, `gold`, `keyword`) in one OpenCompass process."""
    rows = [dict(r) for r in rows]
    return opencompass_env.score_rows(
        prepared, SCORER, rows, ("id", "prediction", "gold", "keyword"), "NIAH", timeout
    )


def aggregate(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """cells {(length, depth): mean score}, by_length {length: Average Depth Score}, overall."""
    samples: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        samples[(int(r["length"]), int(r["depth"]))].append(float(r["score"]))
    if not samples:
        raise ValueError("no NIAH scores to aggregate")
    cells = {key: sum(v) / len(v) for key, v in sorted(samples.items())}
    per_length: dict[int, list[float]] = defaultdict(list)
    for (length, _depth), value in cells.items():
        per_length[length].append(value)
    return {
        "cells": cells,
        "n": {key: len(v) for key, v in sorted(samples.items())},
        "by_length": {n: sum(v) / len(v) for n, v in sorted(per_length.items())},
        "overall": sum(cells.values()) / len(cells),
    }


# --- the rules' jobs (standard library only: these also run in the OpenCompass environment) ---

SPREAD_BY = "depth"  # a sample limit takes one repeat of every depth before the next repeat
RNG_GROUP = "depth"  # the official runs started a dataset (and the seed) per length and depth


def read_data_manifest(path: str | Path, needed: tuple[str, ...] = (HAYSTACK, NEEDLES)) -> dict:
    """The data check's manifest; its files must still have the bytes it recorded."""
    return files.read_data_manifest(path, needed, NiahDataError)


def make_prompts(
    data_manifest: str | Path,
    length: int,
    settings: Mapping[str, Any],
    out: str | Path,
    meta_out: str | Path,
    prepared: Mapping[str, Any],
) -> dict[str, Any]:
    """The prompts rule: one length's prompts, and beside them what they were built from
    (deterministic: same data and packages, same bytes). `settings`: depths, repeats and
    length_buffer (the rule's wildcard admits only the config's lengths)."""
    manifest = read_data_manifest(data_manifest)
    buffer = int(settings.get("length_buffer", LENGTH_BUFFER))
    build_prompts(
        manifest["dir"],
        length,
        settings["depths"],
        settings["repeats"],
        out,
        prepared,
        length_buffer=buffer,
    )
    rows = list(read_jsonl(out))
    meta = {
        "benchmark": "niah",
        "length": int(length),
        "depths": [int(d) for d in settings["depths"]],
        "repeats": int(settings["repeats"]),
        "length_buffer": buffer,
        "rows": len(rows),
        "cl100k_tokens_max": max(r["cl100k_tokens"] for r in rows),
        "prompts_sha256": sha256_file(out),
        "data": {"source": manifest["source"], "files": manifest["files"]},
        **opencompass_env.versions_record(prepared),
    }
    write_json(meta_out, meta)
    return meta


def score_run(
    prompt_files: Iterable[str | Path],
    prediction_files: Iterable[str | Path],
    generation_records: Iterable[str | Path],
    output: str | Path,
    run_info: Mapping[str, Any],
    prepared: Mapping[str, Any],
) -> dict[str, Any]:
    """The score rule: every length of one run, scored in one OpenCompass process.

    `run_info`: model, setting, family, ntk_lambda, sampler, sample_limit. A predictions file
    must answer exactly the prompts its job selects (the same sample limit), each once and with
    a string (`jobs.read_answers`), else the message names the file and the ids at fault.
    """
    prompt_files, prediction_files = list(prompt_files), list(prediction_files)
    if len(prompt_files) != len(prediction_files):
        raise ValueError("one predictions file per prompts file")
    limit = run_info.get("sample_limit")
    joined: list[dict[str, Any]] = []
    n_full = 0
    for prompts_path, pred_path in zip(prompt_files, prediction_files, strict=True):
        prompts = list(read_jsonl(prompts_path))
        n_full += len(prompts)
        wanted = [r["id"] for r in select_samples(prompts, limit, SPREAD_BY)]
        predictions = read_answers(wanted, [pred_path], prompts_path, limit)
        by_id = {r["id"]: r for r in prompts}
        for i in wanted:
            prompt, pred = by_id[i], predictions[i]
            joined.append(
                {
                    "id": i,
                    "length": prompt["length"],
                    "depth": prompt["depth"],
                    "repeat": prompt["repeat"],
                    "gold": prompt["gold"],
                    "keyword": prompt["keyword"],
                    "prediction": pred["prediction"],
                    "prompt_tokens": pred.get("prompt_tokens"),
                    "cl100k_tokens": prompt.get("cl100k_tokens"),
                }
            )
    scored = score_predictions(joined, prepared)
    for row, s in zip(joined, scored, strict=True):
        row["score"] = s["score"]
        row["detail"] = {k: v for k, v in s.items() if k not in ("id", "score")}
    agg = aggregate(joined)
    result = {
        "benchmark": "niah",
        **{k: run_info[k] for k in ("model", "setting", "family", "ntk_lambda", "sampler")},
        "sample_limit": limit,
        "n_samples": len(joined),
        "n_full": n_full,
        "cells": [
            {"length": n, "depth": d, "score": v, "n": agg["n"][(n, d)]}
            for (n, d), v in agg["cells"].items()
        ],
        "by_length": [{"length": n, "score": v} for n, v in agg["by_length"].items()],
        "overall": agg["overall"],
        "samples": joined,
        "provenance": opencompass_env.score_provenance(
            "niah_score",
            "opencompass NeedleBenchOriginEvaluator",
            prepared,
            list(generation_records),
            [*prompt_files, *prediction_files],
        ),
    }
    write_json(output, result)
    return result


ALL_RUNS_COLUMNS = (
    "model",
    "label",
    "setting",
    "ntk_lambda",
    "steps",
    "sample_limit",
    "length",
    "depth",
    "score",
    "n",
)


def write_all_runs_csv(
    score_files: Iterable[str | Path], labels: Mapping[str, str], out: str | Path
) -> int:
    """Every cell of every NIAH run, one row each (model, λ, steps, length, depth, score, n)."""
    import csv

    rows = []
    for path in score_files:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        for cell in result["cells"]:
            rows.append(
                {
                    "model": result["model"],
                    "label": labels.get(result["model"], result["model"]),
                    "setting": result["setting"],
                    "ntk_lambda": result["ntk_lambda"],
                    "steps": result["sampler"].get("steps", ""),
                    "sample_limit": result.get("sample_limit") or "",
                    "length": cell["length"],
                    "depth": cell["depth"],
                    "score": round(cell["score"], 4),
                    "n": cell["n"],
                }
            )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=ALL_RUNS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
