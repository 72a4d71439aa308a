"""LongBench Tables 1 and 3: one row per run, SD, MD, Sum, ICL, Syn, Code and Avg per context.

The numbers come from each run's ``scores.json`` (its ``subsets``: the score of each (context,
subset) scored, 0-100). A category is the mean of its subsets and Avg the mean of the 21
subsets (:func:`longllada.benchmarks.longbench.category_scores` and ``average``), not the mean
of the six category columns. A cheap config may score fewer subsets: a category lacking any of
its subsets is blank, Avg is blank unless all 21 are there, and the table's notes say why.

The paper's Avg is not derivable from its own category columns (BENCHMARKS.md), so every Avg
comparison carries that caveat. Published rows that are another published row plus a constant
in every column (Table 3's Dream rows) are kept as published and flagged in the comparison's
``note`` and in the table's notes.

Written per target: ``<name>.csv`` (wide, 2 decimals), ``.md`` and ``.tex`` (1 decimal, best per
column bold), ``<name>.comparison.csv`` (the paper's number beside ours, see
:func:`longllada.tables.common.comparison_rows`) and ``<name>.subsets.csv`` (every subset score).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longllada.benchmarks.longbench import CATEGORIES, SUBSETS, average, category_scores
from longllada.config import Run, Target
from longllada.rope import format_lambda
from longllada.tables import common

KIND = "longbench_table"
BENCHMARK = "LongBench"
METRICS = (*CATEGORIES, "Avg")
ID_COLUMNS = ["model", "label", "setting", "ntk_lambda"]
RUN_COLUMNS = ["n_samples", "sample_limit"]
SUBSET_COLUMNS = [
    "model",
    "label",
    "setting",
    "ntk_lambda",
    "context",
    "budget",
    "subset",
    "category",
    "score",
    "n",
    "truncated",
]
SCORE_KEYS = (
    "benchmark",
    "model",
    "setting",
    "ntk_lambda",
    "sample_limit",
    "n_samples",
    "n_full",
    "subsets",
)
SUBSET_KEYS = ("context", "subset", "score")
PublishedKey = tuple[str, float, str]  # (model label, λ, context), as common.Published keys

NOTE_AVG = (
    f"Avg = the mean of the {len(SUBSETS)} subset scores at that context, not the mean of the "
    "six category columns. The paper's Avg is neither: it is not derivable from the published "
    "categories (1.4-2.9 points below their mean), so compare Avg with that caveat."
)
# Appended to the comparison's note on the Avg rows that have a published number.
NOTE_AVG_COMPARISON = (
    f"published Avg not derivable from the published categories (ours: mean of the "
    f"{len(SUBSETS)} subsets)"
)
NOTE_SUSPECT = "suspected transcription error in the paper, kept as published"


@dataclass(frozen=True)
class SubsetScore:
    context: str
    budget: int | None
    subset: str
    score: float
    n: int | None
    truncated: int | None


@dataclass(frozen=True)
class LongBenchRow:
    """One run's row: its scores.json as read, and the label the table shows."""

    run: Run
    path: Path
    model_label: str  # the model's display label (what the paper's files name)
    label: str  # as shown: model_label, plus the setting when two rows would read the same
    sample_limit: int | None
    n_samples: int
    n_full: int
    subsets: dict[tuple[str, str], SubsetScore]  # (context, subset) -> score

    def scores(self, context: str) -> dict[str, float]:
        return {s: v.score for (c, s), v in self.subsets.items() if c == context}

    def values(self, contexts: Sequence[str]) -> dict[tuple[str, str], float | None]:
        return {
            (c, metric): value
            for c in contexts
            for metric, value in context_metrics(self.scores(c)).items()
        }


# --- numbers ----------------------------------------------------------------------------------


def context_metrics(scores: Mapping[str, float]) -> dict[str, float | None]:
    """{SD, ..., Code, Avg} of one context's subset scores; None where a subset is missing."""
    return {**category_scores(scores), "Avg": average(scores)}


def missing_subsets(scores: Mapping[str, float]) -> tuple[str, ...]:
    return tuple(s for s in SUBSETS if s not in scores)


# --- reading ----------------------------------------------------------------------------------


def _optional_int(path: Path, where: str, key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path}: {where}: {key} {value!r} is not an integer")
    return value


def _check_subset_row(path: Path, i: int, row: Any) -> None:
    where = f"subsets[{i}]"
    if not isinstance(row, dict):
        raise ValueError(f"{path}: {where} must be a JSON object")
    lacking = [k for k in SUBSET_KEYS if k not in row]
    if lacking:
        raise ValueError(f"{path}: {where} lacks key(s) {', '.join(lacking)}")
    subset = row["subset"]
    if subset not in SUBSETS:
        raise ValueError(f"{path}: {where}: unknown LongBench subset {subset!r}")
    category = row.get("category")
    if category is not None and category != SUBSETS[subset].category:
        # The scoring job and this table would disagree on which column the subset feeds.
        raise ValueError(
            f"{path}: {where}: subset {subset} has category {category!r}, "
            f"not {SUBSETS[subset].category!r}"
        )
    score = row["score"]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError(f"{path}: {where}: score of {subset} is {score!r}, not a number")
    if not 0 <= score <= 100:
        # A 0-1 fraction or a sum would pass silently into the means.
        raise ValueError(f"{path}: {where}: score of {subset} is {score}, outside 0..100")
    for key in ("budget", "n", "truncated"):
        _optional_int(path, where, key, row.get(key))


def load_scores(path: str | Path) -> dict[str, Any]:
    """A run's scores.json, checked for what this module reads (ValueError names the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read LongBench scores ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: LongBench scores must be a JSON object")
    missing = [k for k in SCORE_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: LongBench scores lack key(s) {', '.join(missing)}")
    if data["benchmark"] != "longbench":
        raise ValueError(f"{path}: benchmark is {data['benchmark']!r}, not 'longbench'")
    if not isinstance(data["subsets"], list):
        raise ValueError(f"{path}: subsets must be a list")
    for i, row in enumerate(data["subsets"]):
        _check_subset_row(path, i, row)
    return data


def _subset_scores(
    path: Path, data: Mapping[str, Any], contexts: Sequence[str]
) -> dict[tuple[str, str], SubsetScore]:
    out: dict[tuple[str, str], SubsetScore] = {}
    for row in data["subsets"]:
        context, subset = str(row["context"]), str(row["subset"])
        if context not in contexts:
            # A context the table has no column for would be dropped without a word.
            raise ValueError(
                f"{path}: subset {subset} at context {context!r}, not one of the table's "
                f"contexts ({', '.join(contexts)})"
            )
        if (context, subset) in out:
            raise ValueError(f"{path}: subset {subset} at context {context} appears twice")
        out[(context, subset)] = SubsetScore(
            context=context,
            budget=row.get("budget"),
            subset=subset,
            score=float(row["score"]),
            n=row.get("n"),
            truncated=row.get("truncated"),
        )
    return out


def load_rows(
    target: Target,
    labels: Mapping[str, str],
    inputs: Sequence[str | Path],
    contexts: Sequence[str],
) -> list[LongBenchRow]:
    """One row per run of ``target``, in its order."""
    if not contexts:
        raise ValueError(f"target {target.name}: no contexts given")

    def build(run: Run, path: Path, label: str, data: dict[str, Any]) -> LongBenchRow:
        return LongBenchRow(
            run=run,
            path=path,
            model_label=label,
            label=label,
            sample_limit=data["sample_limit"],
            n_samples=int(data["n_samples"]),
            n_full=int(data["n_full"]),
            subsets=_subset_scores(path, data, contexts),
        )

    return common.load_run_rows(target, labels, inputs, load_scores, build)


# --- published anomalies ----------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetCopy:
    """A published row equal to another one's (same context) plus ``offset`` in every metric."""

    key: PublishedKey
    source: PublishedKey
    offset: float


def offset_copies(
    published: common.Published | None, metrics: Sequence[str] = METRICS
) -> dict[PublishedKey, list[OffsetCopy]]:
    """Published rows that look copied: per row, the other rows of its context it equals plus
    one constant (>= 0) in every metric, smallest offset first.

    Needs every metric present in both rows and at least three metrics (with fewer, unrelated
    rows match by chance). Only the higher row of a pair is flagged, as the one the constant
    was added to; of two identical rows, the later one."""
    if published is None or len(metrics) < 3:
        return {}
    keys = list(published.values)
    order = {k: i for i, k in enumerate(keys)}
    out: dict[PublishedKey, list[OffsetCopy]] = {}
    for key in keys:
        mine = published.values[key]
        for source in keys:
            if source == key or source[2] != key[2]:
                continue
            theirs = published.values[source]
            if any(mine.get(m) is None or theirs.get(m) is None for m in metrics):
                continue
            # The published numbers have one decimal; rounding absorbs float noise only.
            offsets = {round(mine[m] - theirs[m], 6) for m in metrics}  # type: ignore[operator]
            if len(offsets) != 1:
                continue
            offset = offsets.pop()
            if offset > 0 or (offset == 0 and order[key] > order[source]):
                out.setdefault(key, []).append(OffsetCopy(key, source, offset))
    return {k: sorted(v, key=lambda c: (c.offset, order[c.source])) for k, v in out.items()}


def _offset_text(offset: float) -> str:
    text = f"{offset:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _pair_name(key: PublishedKey) -> str:
    return f"{key[0]} λ={format_lambda(key[1])}"


def copy_note(copies: Sequence[OffsetCopy]) -> str:
    """The comparison's note for a published row in ``offset_copies``."""
    key = copies[0].key
    sources = ", ".join(
        f"{_pair_name(c.source)} {c.source[2]} + {_offset_text(c.offset)}" for c in copies
    )
    return f"published {_pair_name(key)} {key[2]} = {sources} in every column: {NOTE_SUSPECT}"


def _published_key(row: Mapping[str, Any]) -> PublishedKey | None:
    if row["published_model"] is None:
        return None
    return (row["published_model"], row["published_ntk_lambda"], row["published_context"])


def annotate_comparison(
    rows: Sequence[dict[str, Any]], copies: Mapping[PublishedKey, Sequence[OffsetCopy]]
) -> list[dict[str, Any]]:
    """``common.comparison_rows`` output with this table's caveats appended to ``note``: the
    Avg caveat where a published Avg is compared, and the copy flag where the published
    number is from a row of ``copies``."""
    out = []
    for row in rows:
        extra = []
        key = _published_key(row)
        if key in copies:
            extra.append(copy_note(copies[key]))  # type: ignore[index]
        if row["metric"] == "Avg" and row["published"] is not None:
            extra.append(NOTE_AVG_COMPARISON)
        note = "; ".join(n for n in (row["note"], *extra) if n)
        out.append({**row, "note": note})
    return out


def copy_table_notes(
    comparison: Sequence[Mapping[str, Any]], copies: Mapping[PublishedKey, Sequence[OffsetCopy]]
) -> list[str]:
    """One note per flagged published (model, λ) that this table is compared with."""
    hit: dict[tuple[str, float], dict[str, list[OffsetCopy]]] = {}
    for row in comparison:
        key = _published_key(row)
        if key in copies:
            hit.setdefault(key[:2], {})[key[2]] = list(copies[key])  # type: ignore[index]
    notes = []
    for pair, per_context in hit.items():
        contexts = ", ".join(per_context)
        sources = dict.fromkeys(
            f"{_pair_name(c.source)} + {_offset_text(c.offset)}"
            for found in per_context.values()
            for c in found
        )
        notes.append(
            f"The paper's {_pair_name(pair)} row ({contexts}) equals {' and '.join(sources)} "
            f"in every column: a {NOTE_SUSPECT} (flagged in the comparison's note)."
        )
    return notes


# --- notes ------------------------------------------------------------------------------------


banner_text = common.limited_run_banner


def blank_notes(rows: Sequence[LongBenchRow], contexts: Sequence[str]) -> list[str]:
    """Why cells are blank: per context, the subsets not scored and the rows they are missing
    from ("every row" when all lack the same ones)."""
    notes = []
    for context in contexts:
        by_missing: dict[tuple[str, ...], list[LongBenchRow]] = {}
        for row in rows:
            missing = missing_subsets(row.scores(context))
            if missing:
                by_missing.setdefault(missing, []).append(row)
        for missing, who in by_missing.items():
            blank = [c for c in CATEGORIES if any(SUBSETS[s].category == c for s in missing)]
            rows_text = (
                "every row" if len(who) == len(rows) else ", ".join(common.row_name(r) for r in who)
            )
            scored = [s for s in SUBSETS if s not in missing]
            if not scored:
                what = "no subset scored"
            elif len(scored) < len(missing):  # the shorter list says the same
                what = f"only {', '.join(scored)} scored"
            else:
                what = f"not scored: {', '.join(missing)}"
            notes.append(
                f"{context.upper()}: {', '.join([*blank, 'Avg'])} blank for {rows_text} ({what}; "
                f"a category needs all its subsets, Avg all {len(SUBSETS)})."
            )
    return notes


def category_note() -> str:
    members = "; ".join(
        f"{c}: {', '.join(s for s, v in SUBSETS.items() if v.category == c)}" for c in CATEGORIES
    )
    return f"Categories are means of their subsets ({members})."


def table_notes(rows: Sequence[LongBenchRow], contexts: Sequence[str]) -> list[str]:
    return [
        NOTE_AVG,
        category_note(),
        "Bold: the best value of each column.",
        *blank_notes(rows, contexts),
    ]


# --- tables -----------------------------------------------------------------------------------


def build_table(
    target: Target,
    rows: Sequence[LongBenchRow],
    contexts: Sequence[str],
    extra_notes: Sequence[str] = (),
) -> common.WideTable:
    values = []
    for row in rows:
        per = row.values(contexts)
        values.append(tuple(per[(c, m)] for c in contexts for m in METRICS))
    breaks = frozenset(i for i in range(1, len(rows)) if rows[i].run.model != rows[i - 1].run.model)
    return common.WideTable(
        title=common.table_title(target.name, BENCHMARK),
        stub=("Model", "λ"),
        groups=tuple(c.upper() for c in contexts),
        metrics=METRICS,
        rows=tuple((r.label, format_lambda(r.run.ntk_lambda)) for r in rows),
        values=tuple(values),
        notes=(*table_notes(rows, contexts), *extra_notes),
        banner=banner_text(rows),
        breaks=breaks,
    )


def wide_columns(contexts: Sequence[str]) -> list[str]:
    return [*ID_COLUMNS, *(f"{c}_{m}" for c in contexts for m in METRICS), *RUN_COLUMNS]


def _ids(row: LongBenchRow) -> dict[str, Any]:
    return {
        "model": row.run.model,
        "label": row.label,
        "setting": row.run.setting,
        "ntk_lambda": row.run.ntk_lambda,
    }


def wide_rows(rows: Sequence[LongBenchRow], contexts: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        values = {f"{c}_{m}": v for (c, m), v in row.values(contexts).items()}
        run = {"n_samples": row.n_samples, "sample_limit": row.sample_limit}
        out.append({**_ids(row), **values, **run})
    return out


def subset_rows(rows: Sequence[LongBenchRow], contexts: Sequence[str]) -> list[dict[str, Any]]:
    """Tidy: per row, context (table order) and subset (SUBSETS order) that was scored."""
    out = []
    for row in rows:
        for context in contexts:
            for subset, facts in SUBSETS.items():
                score = row.subsets.get((context, subset))
                if score is None:
                    continue
                out.append(
                    {
                        **_ids(row),
                        "context": context,
                        "budget": score.budget,
                        "subset": subset,
                        "category": facts.category,
                        "score": score.score,
                        "n": score.n,
                        "truncated": score.truncated,
                    }
                )
    return out


def compare_rows(rows: Sequence[LongBenchRow], contexts: Sequence[str]) -> list[common.CompareRow]:
    return [
        common.CompareRow(
            model=r.run.model,
            label=r.label,
            match_label=r.model_label,
            ntk_lambda=r.run.ntk_lambda,
            values=r.values(contexts),
            family=r.run.family,
        )
        for r in rows
    ]


# --- entry ------------------------------------------------------------------------------------


def write_target(
    target: Target,
    labels: Mapping[str, str],
    inputs: Sequence[str | Path],
    published: Sequence[str | Path],
    contexts: Sequence[str],
    csv: str | Path,
    md: str | Path,
    tex: str | Path,
    comparison: str | Path,
    subsets_csv: str | Path,
) -> None:
    """The rule's entry. ``labels``: model key -> display label; ``inputs``: the runs'
    scores.json files (matched to ``target.runs`` by their content); ``published``: the paper's
    CSVs, concatenated (Table 3: its own, then Table 1 for the LLaMA3 rows; none for an
    extension); ``contexts``: the table's contexts in order."""
    if target.kind != KIND:
        raise ValueError(f"target {target.name}: kind {target.kind!r} is not {KIND!r}")
    paper = common.load_published(published, METRICS)  # first: a bad file fails before writing
    rows = load_rows(target, labels, inputs, contexts)
    copies = offset_copies(paper)
    compared = annotate_comparison(
        common.comparison_rows(compare_rows(rows, contexts), contexts, METRICS, paper), copies
    )
    table = build_table(target, rows, contexts, copy_table_notes(compared, copies))
    metric_columns = [f"{c}_{m}" for c in contexts for m in METRICS]
    decimals = dict.fromkeys(metric_columns, common.CSV_DECIMALS)
    common.write_csv(wide_rows(rows, contexts), wide_columns(contexts), csv, decimals)
    common.write_text(md, common.to_markdown(table))
    common.write_text(tex, common.to_latex(table))
    common.write_csv(compared, common.COMPARISON_COLUMNS, comparison, common.COMPARISON_DECIMALS)
    common.write_csv(
        subset_rows(rows, contexts), SUBSET_COLUMNS, subsets_csv, {"score": common.CSV_DECIMALS}
    )
