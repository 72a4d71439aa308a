"""NeedleBench NIAH (Figures 1b, 2, 3, 6-11): scoring through OpenCompass, and the aggregation.

Scoring is OpenCompass's NeedleBenchOriginEvaluator itself, run in the OpenCompass environment
(oc_side/niah_score.py): 100 if the keyword is in the raw answer, else 0.2 x the edit similarity
of answer and needle with all whitespace removed. The aggregation is the paper's plotting code's
(BENCHMARKS.md): a cell is the mean of its repeats, the Average Depth Score of a length the mean
over its depths (Figure 1b), the Overall Score the mean of all cells.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from longllada import opencompass_env

SCORER = Path(__file__).resolve().parents[1] / "oc_side" / "niah_score.py"


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
        res = subprocess.run(
            [prepared["python"], str(SCORER), str(src), str(dst)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=opencompass_env.environment(prepared),
        )
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
