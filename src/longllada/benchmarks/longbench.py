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
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from longllada import opencompass_env

OC_SIDE = Path(__file__).resolve().parents[1] / "oc_side"
FACTS_SCRIPT = OC_SIDE / "longbench_facts.py"
SCORER = OC_SIDE / "longbench_score.py"


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
