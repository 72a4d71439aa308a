"""Verdicts: each published number beside ours, inside or outside its tolerance.

The comparison files the figure and table rules write (``paper_figures/<target>.comparison.csv``)
come in three layouts, told apart by their columns:

* NIAH (``panel, kind, length, depth, ...``): ``kind`` is ``cell``, ``average_depth_score``
  (one length, the mean over depths) or ``overall`` (the panel's score);
* tables (``row, model, label, ntk_lambda, context, metric, ...``): RULER or LongBench, by the
  target's kind (or, without a config, by its name);
* perplexity (``model, label, ntk_lambda, context_tokens, ... relative_difference``).

Every row with a published or a reproduced number is one :class:`Cell`. A cell with both is
``inside`` or ``outside`` its tolerance (:class:`Tolerances`); one with only the published number
is ``missing`` (the run does not reach it: a shorter demo, a subset left out, a job not done);
one with only ours is ``unpublished`` (a run or length the paper has no number for). Nothing is
dropped silently: a file that cannot be read gives the target an ``error`` instead of cells.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

VERDICTS = ("inside", "outside", "missing", "unpublished")
SUSPECT_MARK = "suspected transcription error"  # the tables' note on a copied published row
NIAH_COLUMNS = {"panel", "kind", "length", "depth", "published", "reproduced"}
TABLE_COLUMNS = {"row", "label", "ntk_lambda", "context", "metric", "published", "reproduced"}
PPL_COLUMNS = {"label", "ntk_lambda", "context_tokens", "published", "reproduced"}
NIAH_KINDS = {"cell": "niah_cell", "average_depth_score": "niah_cell", "overall": "niah_overall"}
TABLE_BENCHMARKS = {"ruler_table": "ruler", "longbench_table": "longbench"}


@dataclass(frozen=True)
class Tolerances:
    """Absolute points, except ``ppl_relative`` (a fraction of the published perplexity)."""

    niah_overall: float = 3.0
    niah_cell: float = 10.0
    ruler: float = 2.0
    longbench: float = 2.0
    ppl_relative: float = 0.05

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Tolerances:
        """From ``report.tolerances`` (the schema has checked the keys); defaults elsewhere."""
        given = (config.get("report") or {}).get("tolerances") or {}
        return cls(**{f.name: float(given[f.name]) for f in fields(cls) if f.name in given})

    def describe(self, group: str) -> str:
        value = getattr(self, group)
        return f"±{value * 100:g} %" if group == "ppl_relative" else f"±{value:g}"


@dataclass(frozen=True)
class Cell:
    """One published number and ours, where either exists."""

    what: str  # how the report names the cell: "LLaDA-8B-Base λ=4 8k SD"
    group: str  # its tolerance: a field of Tolerances
    published: float | None
    reproduced: float | None
    note: str = ""

    @property
    def difference(self) -> float | None:
        if self.published is None or self.reproduced is None:
            return None
        return self.reproduced - self.published

    @property
    def suspect(self) -> bool:
        """The published number is flagged as a likely transcription error of the paper."""
        return SUSPECT_MARK in self.note

    def verdict(self, tolerances: Tolerances) -> str:
        if self.published is None:
            return "unpublished"
        if self.reproduced is None:
            return "missing"
        limit = getattr(tolerances, self.group)
        if self.group == "ppl_relative":
            off = abs(self.reproduced - self.published) / abs(self.published)
        else:
            off = abs(self.reproduced - self.published)
        return "inside" if off <= limit + 1e-9 else "outside"


@dataclass
class TargetVerdicts:
    """A target's cells, or why it has none."""

    target: str
    path: Path
    cells: list[Cell] = field(default_factory=list)
    error: str | None = None  # the comparison file is absent or unreadable
    problems: list[str] = field(default_factory=list)  # rows read but not understood
    uncompared: list[str] = field(default_factory=list)  # published rows no cell is matched to

    def counts(self, tolerances: Tolerances) -> Counter:
        return Counter(c.verdict(tolerances) for c in self.cells)

    def groups(self) -> list[str]:
        return sorted({c.group for c in self.cells})

    def status(self, tolerances: Tolerances) -> str:
        """One word for the summary: not built, error, no published numbers, reproduced
        (every compared cell inside), or outside."""
        if self.error is not None:
            return "not built" if not self.path.exists() else "error"
        counts = self.counts(tolerances)
        if counts["inside"] + counts["outside"] == 0:
            return "nothing compared"
        return "outside" if counts["outside"] else "inside"


def _number(row: Mapping[str, str], column: str) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    value = float(text)  # ValueError: reported by the caller with file and line
    return None if math.isnan(value) else value


def file_layout(columns: Sequence[str]) -> str | None:
    """Which comparison file these columns are: niah, table, ppl (None: none known)."""
    have = set(columns)
    if have >= NIAH_COLUMNS:
        return "niah"
    if have >= TABLE_COLUMNS:
        return "table"
    if have >= PPL_COLUMNS:
        return "ppl"
    return None


def table_benchmark(target: str, kind: str | None) -> str | None:
    """ruler or longbench: from the target's kind, else from its name."""
    if kind in TABLE_BENCHMARKS:
        return TABLE_BENCHMARKS[kind]
    low = target.lower()
    return next((b for b in ("ruler", "longbench") if b in low), None)


def _lambda_text(value: str) -> str:
    return value.strip() or "?"


def _cell_of(layout: str, row: Mapping[str, str], benchmark: str | None) -> tuple[str, str]:
    """(what, group) of one row."""
    if layout == "niah":
        kind = row["kind"]
        if kind not in NIAH_KINDS:
            raise ValueError(f"unknown NIAH row kind {kind!r}")
        where = {
            "cell": f"length {row['length']} depth {row['depth']}",
            "average_depth_score": f"length {row['length']} (mean over depths)",
            "overall": "overall",
        }[kind]
        return f"panel {row['panel']} {where}", NIAH_KINDS[kind]
    if layout == "table":
        if benchmark is None:
            raise ValueError("a table of neither RULER nor LongBench")
        what = (
            f"{row['label']} λ={_lambda_text(row['ntk_lambda'])} {row['context']} {row['metric']}"
        )
        return what, benchmark
    return f"{row['label']} λ={_lambda_text(row['ntk_lambda'])} {row['context_tokens']} tokens", (
        "ppl_relative"
    )


def _published_keys(path: Path, layout: str) -> list[tuple[str, ...]]:
    """The rows of a published file as the comparison names them: (model, λ, context) of a
    table, (model,) of a perplexity curve."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if layout == "table":
        return [(r["model"].strip(), _lam(r["ntk_lambda"]), r["context"].strip()) for r in rows]
    return [(r["model"].strip(),) for r in rows]


def _lam(text: str | None) -> str:
    try:
        return f"{float(text or ''):g}"
    except ValueError:
        return (text or "").strip()


def _compared_key(row: Mapping[str, str], layout: str) -> tuple[str, ...] | None:
    model = (row.get("published_model") or "").strip()
    if not model:
        return None
    if layout == "table":
        return (
            model,
            _lam(row.get("published_ntk_lambda")),
            (row.get("published_context") or "").strip(),
        )
    return (model,)


def read_comparison(
    path: str | Path,
    target: str,
    kind: str | None = None,
    published: Sequence[str | Path] = (),
) -> TargetVerdicts:
    """The cells of one comparison file. ``kind``: the target's kind from the config, when
    known; ``published``: the target's published files, to list their rows that no cell was
    compared with (tables and perplexity). Never raises for bad content: the problem is
    recorded on the result."""
    path = Path(path)
    result = TargetVerdicts(target=target, path=path)
    if not path.exists():
        result.error = f"{path} does not exist (target not built yet)"
        return result
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            layout = file_layout(reader.fieldnames or [])
            if layout is None:
                result.error = (
                    f"{path}: columns {', '.join(reader.fieldnames or []) or '(none)'} are no "
                    "known comparison layout"
                )
                return result
            benchmark = table_benchmark(target, kind) if layout == "table" else None
            compared: set[tuple[str, ...]] = set()
            for line, row in enumerate(reader, start=2):
                key = _compared_key(row, layout)
                if key is not None:
                    compared.add(key)
                try:
                    paper, ours = _number(row, "published"), _number(row, "reproduced")
                    if paper is None and ours is None:
                        continue
                    what, group = _cell_of(layout, row, benchmark)
                except (ValueError, KeyError) as e:
                    result.problems.append(f"{path}:{line}: {e}")
                    continue
                result.cells.append(Cell(what, group, paper, ours, (row.get("note") or "").strip()))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        result.error = f"{path}: cannot read ({e})"
        return result
    if layout in ("table", "ppl"):
        for pub in published:
            try:
                keys = _published_keys(Path(pub), layout)
            except (OSError, KeyError, csv.Error) as e:
                result.problems.append(f"{pub}: cannot read the published rows ({e})")
                continue
            for k in dict.fromkeys(keys):
                if k not in compared:
                    lam = f" λ={k[1]}" if len(k) > 1 else ""
                    rest = f" {k[2]}" if len(k) > 2 else ""
                    result.uncompared.append(f"{k[0]}{lam}{rest}")
    return result


# --- the verdict table, as text --------------------------------------------------------------


def format_value(value: float | None, group: str, blank: str = "-") -> str:
    """A cell's number as the report and the terminal show it: perplexities to 4 significant
    digits, scores to one decimal (the paper's)."""
    if value is None:
        return blank
    return f"{value:.4g}" if group == "ppl_relative" else f"{value:.1f}"


def summary_rows(results: Sequence[TargetVerdicts], tolerances: Tolerances) -> list[dict[str, Any]]:
    """One dict per target: status, cell counts per verdict, tolerances in force."""
    rows = []
    for r in results:
        counts = r.counts(tolerances)
        rows.append(
            {
                "target": r.target,
                "status": r.status(tolerances),
                **{v: counts[v] for v in VERDICTS},
                "suspect": sum(c.suspect for c in r.cells),
                "tolerance": ", ".join(f"{g} {tolerances.describe(g)}" for g in r.groups()),
                "problems": len(r.problems),
            }
        )
    return rows


def format_table(results: Sequence[TargetVerdicts], tolerances: Tolerances, cells: str) -> str:
    """The terminal table: one line per target, then per target its cells (``cells``: "outside"
    lists only those outside tolerance, "all" every cell, "none" no cells)."""
    head = ["target", "status", *VERDICTS, "tolerance"]
    rows = [
        [
            s["target"],
            s["status"],
            *(str(s[v]) for v in VERDICTS),
            s["tolerance"] or "-",
        ]
        for s in summary_rows(results, tolerances)
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(head, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    for r in results:
        if r.error:
            lines += ["", f"{r.target}: {r.error}"]
            continue
        for problem in r.problems:
            lines.append(f"{r.target}: row skipped: {problem}")
        if r.uncompared:
            lines.append(
                f"{r.target}: {len(r.uncompared)} published rows not compared: "
                + shortened(r.uncompared)
            )
        shown = [
            c
            for c in r.cells
            if cells == "all" or (cells == "outside" and c.verdict(tolerances) == "outside")
        ]
        if not shown:
            continue
        lines += ["", f"{r.target}:"]
        for c in shown:
            flag = " (published number suspect)" if c.suspect else ""
            paper, ours, diff = (
                format_value(v, c.group) for v in (c.published, c.reproduced, c.difference)
            )
            lines.append(
                f"  {c.verdict(tolerances):<11} {c.what}: paper {paper}, ours {ours}, "
                f"diff {diff}{flag}"
            )
    return "\n".join(lines) + "\n"


def shortened(items: Sequence[str], most: int = 10) -> str:
    """The first ``most`` items, and how many more."""
    more = f", and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def any_outside(results: Sequence[TargetVerdicts], tolerances: Tolerances) -> bool:
    return any(r.counts(tolerances)["outside"] for r in results)
