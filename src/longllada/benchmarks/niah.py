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

from longllada import opencompass_env

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
) -> None:
    """One prompts JSONL for one length, every depth and repeat, by OpenCompass's
    NeedleBenchOriginDataset in one OpenCompass process (oc_side/niah_prompts.py)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = {
        "data_dir": str(Path(data_dir).resolve()),
        "haystack": HAYSTACK,
        "needles": NEEDLES,
        "length": int(length),
        "depths": [int(d) for d in depths],
        "repeats": int(repeats),
        "length_buffer": LENGTH_BUFFER,
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


def write_demo_data(out_dir: str | Path, prose: str, n_needles: int = 3) -> Path:
    """NeedleBench-format files for the demo and tests: a haystack of real prose (one record a
    paragraph) and needles whose questions end in the real answer-format blank."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paragraphs = [p.strip() for p in prose.split("\n") if p.strip()]
    with open(out_dir / HAYSTACK, "w", encoding="utf-8") as f:
        for text in paragraphs:
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
    ids = [r["id"] for r in rows]
    with tempfile.TemporaryDirectory(prefix="niah_score_") as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for r in rows:
                keep = {k: r[k] for k in ("id", "prediction", "gold", "keyword")}
                f.write(json.dumps(keep, ensure_ascii=False) + "\n")
        res = opencompass_env.run_script(prepared, SCORER, src, dst, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"NIAH scoring failed: {res.stderr.strip()[-3000:]}")
        scored = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    if [s["id"] for s in scored] != ids:
        raise RuntimeError("NIAH scoring returned other ids than it was given")
    return scored


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
