"""RULER Tables 2 and 4: one row per run, NIAH, AGG, QA and Avg per context.

The numbers come from each run's ``scores.json`` (its ``tasks``: the mean score per (context,
task)). As in the paper, NIAH is the mean of the 8 niah tasks, AGG of vt, cwe and fwe, QA of
qa_squad and qa_hotpotqa, and Avg the mean of all 13 tasks (so (8 NIAH + 3 AGG + 2 QA) / 13, not
the mean of the three group columns). A cheap config may score fewer tasks: a group lacking any
of its tasks is blank, Avg is blank unless all 13 are there, and the table's notes say why.

Written per target: ``<name>.csv`` (wide, 2 decimals), ``.md`` and ``.tex`` (1 decimal, best per
column bold), ``<name>.comparison.csv`` (the paper's number beside ours, see
:func:`longllada.tables.common.comparison_rows`) and ``<name>.tasks.csv`` (every task score).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longllada.benchmarks.ruler import GROUPS, TASKS
from longllada.config import Run, Target
from longllada.rope import format_lambda
from longllada.tables import common

KIND = "ruler_table"
BENCHMARK = "RULER"
METRICS = ("NIAH", "AGG", "QA", "Avg")
ID_COLUMNS = ["model", "label", "setting", "ntk_lambda"]
RUN_COLUMNS = ["n_samples", "sample_limit"]
TASK_COLUMNS = [
    "model",
    "label",
    "setting",
    "ntk_lambda",
    "context",
    "length",
    "task",
    "group",
    "score",
    "n",
]
SCORE_KEYS = (
    "benchmark",
    "model",
    "setting",
    "ntk_lambda",
    "sample_limit",
    "n_samples",
    "n_full",
    "tasks",
)
TASK_KEYS = ("context", "task", "score")
GROUP_OF = {task: group for group, tasks in GROUPS.items() for task in tasks}


@dataclass(frozen=True)
class TaskScore:
    context: str
    length: int | None
    task: str
    score: float
    n: int | None


@dataclass(frozen=True)
class RulerRow:
    """One run's row: its scores.json as read, and the label the table shows."""

    run: Run
    path: Path
    model_label: str  # the model's display label (what the paper's files name)
    label: str  # as shown: model_label, plus the setting when two rows would read the same
    sample_limit: int | None
    n_samples: int
    n_full: int
    tasks: dict[tuple[str, str], TaskScore]  # (context, task) -> score

    def scores(self, context: str) -> dict[str, float]:
        return {t: s.score for (c, t), s in self.tasks.items() if c == context}

    def values(self, contexts: Sequence[str]) -> dict[tuple[str, str], float | None]:
        return {
            (c, metric): value
            for c in contexts
            for metric, value in context_metrics(self.scores(c)).items()
        }


# --- numbers ----------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def context_metrics(scores: Mapping[str, float]) -> dict[str, float | None]:
    """{NIAH, AGG, QA, Avg} of one context's task scores; None where a task is missing."""
    out: dict[str, float | None] = {}
    for group, tasks in GROUPS.items():
        complete = all(t in scores for t in tasks)
        out[group] = _mean([scores[t] for t in tasks]) if complete else None
    out["Avg"] = _mean([scores[t] for t in TASKS]) if all(t in scores for t in TASKS) else None
    return out


def missing_tasks(scores: Mapping[str, float]) -> tuple[str, ...]:
    return tuple(t for t in TASKS if t not in scores)


# --- reading ----------------------------------------------------------------------------------


def load_scores(path: str | Path) -> dict[str, Any]:
    """A run's scores.json, checked for what this module reads (ValueError names the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read RULER scores ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: RULER scores must be a JSON object")
    missing = [k for k in SCORE_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: RULER scores lack key(s) {', '.join(missing)}")
    if data["benchmark"] != "ruler":
        raise ValueError(f"{path}: benchmark is {data['benchmark']!r}, not 'ruler'")
    if not isinstance(data["tasks"], list):
        raise ValueError(f"{path}: tasks must be a list")
    for i, row in enumerate(data["tasks"]):
        lacking = [k for k in TASK_KEYS if k not in row]
        if lacking:
            raise ValueError(f"{path}: tasks[{i}] lacks key(s) {', '.join(lacking)}")
        if row["task"] not in GROUP_OF:
            raise ValueError(f"{path}: tasks[{i}]: unknown RULER task {row['task']!r}")
    return data


def _task_scores(
    path: Path, data: Mapping[str, Any], contexts: Sequence[str]
) -> dict[tuple[str, str], TaskScore]:
    out: dict[tuple[str, str], TaskScore] = {}
    for row in data["tasks"]:
        context, task = str(row["context"]), str(row["task"])
        if context not in contexts:
            # A context the table has no column for would be dropped without a word.
            raise ValueError(
                f"{path}: task {task} at context {context!r}, not one of the table's contexts "
                f"({', '.join(contexts)})"
            )
        if (context, task) in out:
            raise ValueError(f"{path}: task {task} at context {context} appears twice")
        length, n = row.get("length"), row.get("n")
        out[(context, task)] = TaskScore(
            context=context,
            length=None if length is None else int(length),
            task=task,
            score=float(row["score"]),
            n=None if n is None else int(n),
        )
    return out


def load_rows(
    target: Target,
    labels: Mapping[str, str],
    inputs: Sequence[str | Path],
    contexts: Sequence[str],
) -> list[RulerRow]:
    """One row per run of ``target``, in its order."""
    if not contexts:
        raise ValueError(f"target {target.name}: no contexts given")

    def build(run: Run, path: Path, label: str, data: dict[str, Any]) -> RulerRow:
        return RulerRow(
            run=run,
            path=path,
            model_label=label,
            label=label,
            sample_limit=data["sample_limit"],
            n_samples=int(data["n_samples"]),
            n_full=int(data["n_full"]),
            tasks=_task_scores(path, data, contexts),
        )

    return common.load_run_rows(target, labels, inputs, load_scores, build)


# --- notes ------------------------------------------------------------------------------------


banner_text = common.limited_run_banner


def blank_notes(rows: Sequence[RulerRow], contexts: Sequence[str]) -> list[str]:
    """Why cells are blank: per context, the tasks not scored and the rows they are missing
    from ("every row" when all lack the same ones)."""
    notes = []
    for context in contexts:
        by_missing: dict[tuple[str, ...], list[RulerRow]] = {}
        for row in rows:
            missing = missing_tasks(row.scores(context))
            if missing:
                by_missing.setdefault(missing, []).append(row)
        for missing, who in by_missing.items():
            blank = [g for g, tasks in GROUPS.items() if set(tasks) & set(missing)] + ["Avg"]
            rows_text = (
                "every row" if len(who) == len(rows) else ", ".join(common.row_name(r) for r in who)
            )
            full = len(missing) == len(TASKS)
            what = "no task scored" if full else f"not scored: {', '.join(missing)}"
            notes.append(
                f"{context.upper()}: {', '.join(blank)} blank for {rows_text} ({what}; a group "
                f"needs all its tasks, Avg all {len(TASKS)})."
            )
    return notes


def table_notes(rows: Sequence[RulerRow], contexts: Sequence[str]) -> list[str]:
    groups = "; ".join(f"{g}: {', '.join(t)}" for g, t in GROUPS.items())
    return [
        f"Avg = the mean of the {len(TASKS)} task scores at that context "
        f"((8 NIAH + 3 AGG + 2 QA) / {len(TASKS)}), not the mean of the three group columns.",
        f"Groups are means of their tasks ({groups}).",
        "Bold: the best value of each column.",
        *blank_notes(rows, contexts),
    ]


# --- tables -----------------------------------------------------------------------------------


def build_table(
    target: Target, rows: Sequence[RulerRow], contexts: Sequence[str]
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
        notes=tuple(table_notes(rows, contexts)),
        banner=banner_text(rows),
        breaks=breaks,
    )


def wide_columns(contexts: Sequence[str]) -> list[str]:
    return [*ID_COLUMNS, *(f"{c}_{m}" for c in contexts for m in METRICS), *RUN_COLUMNS]


def _ids(row: RulerRow) -> dict[str, Any]:
    return {
        "model": row.run.model,
        "label": row.label,
        "setting": row.run.setting,
        "ntk_lambda": row.run.ntk_lambda,
    }


def wide_rows(rows: Sequence[RulerRow], contexts: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        values = {f"{c}_{m}": v for (c, m), v in row.values(contexts).items()}
        run = {"n_samples": row.n_samples, "sample_limit": row.sample_limit}
        out.append({**_ids(row), **values, **run})
    return out


def task_rows(rows: Sequence[RulerRow], contexts: Sequence[str]) -> list[dict[str, Any]]:
    """Tidy: per row, context (table order) and task (TASKS order) that was scored."""
    out = []
    for row in rows:
        for context in contexts:
            for task in TASKS:
                score = row.tasks.get((context, task))
                if score is None:
                    continue
                out.append(
                    {
                        **_ids(row),
                        "context": context,
                        "length": score.length,
                        "task": task,
                        "group": GROUP_OF[task],
                        "score": score.score,
                        "n": score.n,
                    }
                )
    return out


def compare_rows(rows: Sequence[RulerRow], contexts: Sequence[str]) -> list[common.CompareRow]:
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
    tasks_csv: str | Path,
) -> None:
    """The rule's entry. ``labels``: model key -> display label; ``inputs``: the runs'
    scores.json files (matched to ``target.runs`` by their content); ``published``: the paper's
    CSVs, concatenated (none for an extension); ``contexts``: the table's contexts in order."""
    if target.kind != KIND:
        raise ValueError(f"target {target.name}: kind {target.kind!r} is not {KIND!r}")
    paper = common.load_published(published, METRICS)  # first: a bad file fails before writing
    rows = load_rows(target, labels, inputs, contexts)
    table = build_table(target, rows, contexts)
    metric_columns = [f"{c}_{m}" for c in contexts for m in METRICS]
    decimals = dict.fromkeys(metric_columns, common.CSV_DECIMALS)
    common.write_csv(wide_rows(rows, contexts), wide_columns(contexts), csv, decimals)
    common.write_text(md, common.to_markdown(table))
    common.write_text(tex, common.to_latex(table))
    common.write_csv(
        common.comparison_rows(compare_rows(rows, contexts), contexts, METRICS, paper),
        common.COMPARISON_COLUMNS,
        comparison,
        common.COMPARISON_DECIMALS,
    )
    common.write_csv(
        task_rows(rows, contexts), TASK_COLUMNS, tasks_csv, {"score": common.CSV_DECIMALS}
    )
