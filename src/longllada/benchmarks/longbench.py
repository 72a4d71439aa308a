"""LongBench: its 21 subsets, their categories, sizes and output lengths.

Sizes are the number of test samples of each subset in THUDM/LongBench; output lengths are
LongBench's own per-subset generation budgets, which OpenCompass's configs repeat.
"""

from __future__ import annotations

from typing import NamedTuple


class Subset(NamedTuple):
    category: str  # SD, MD, Sum, ICL, Syn, Code (the paper's table columns)
    n_samples: int
    max_new_tokens: int


SUBSETS: dict[str, Subset] = {
    "narrativeqa": Subset("SD", 200, 128),
    "qasper": Subset("SD", 200, 128),
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
