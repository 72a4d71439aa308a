"""Wide tables shared by the RULER and LongBench tables: CSV, Markdown, booktabs LaTeX, the
published numbers and the comparison with them.

A table is rows x (column group x metric); a RULER table has one group per context (4K, 8K,
16K) of NIAH, AGG, QA and Avg. Numbers show with one decimal, as in the paper, and the best value
of each column is bold. Best is judged on the numbers as shown, so values that print the same are
all bold, and a blank is never bold.

Published files (``config/published/*.csv``) have the columns ``model, ntk_lambda, context`` and
one column per metric; ``model`` is the display label ("LLaDA-8B-Base").
"""

from __future__ import annotations

import csv as csv_module
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from longllada.rope import format_lambda

if TYPE_CHECKING:
    from longllada.config import Run, Target

SHOW_DECIMALS = 1  # the paper's tables
CSV_DECIMALS = 2
KEY_COLUMNS = ("model", "ntk_lambda", "context")
COMPARISON_COLUMNS = [
    "row",
    "model",
    "label",
    "ntk_lambda",
    "context",
    "metric",
    "published_model",
    "published_ntk_lambda",
    "published_context",
    "published",
    "reproduced",
    "difference",
    "note",
]
COMPARISON_DECIMALS = {"reproduced": CSV_DECIMALS, "difference": CSV_DECIMALS}
NOTE_NOT_IN_PAPER = "not in the paper"
NOTE_BY_POSITION = "matched by position: not the paper's model/context"
NOTE_BEYOND = "matched by position: no published number at this position"
NOTE_NO_PUBLISHED = "no published numbers"

# The characters LaTeX treats specially in text, and what prints them.
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "λ": r"$\lambda$",  # the tables' λ column and "λ=4" in labels; pdflatex has no glyph for it
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in LATEX_SPECIALS))


# --- text -------------------------------------------------------------------------------------


def table_title(target_name: str, benchmark: str) -> str:
    """ "table2_ruler" -> "Table 2 (RULER)"; a name without a table number stays as it is."""
    m = re.match(r"table(\d+)", target_name)
    return f"Table {m.group(1)} ({benchmark})" if m else f"{target_name} ({benchmark})"


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: float | None, decimals: int = SHOW_DECIMALS) -> str:
    """A fixed number of decimals; blank for None or NaN, and never "-0.0"."""
    if _is_blank(value):
        return ""
    text = f"{float(value):.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def best_flags(values: Sequence[float | None], decimals: int = SHOW_DECIMALS) -> list[bool]:
    """Which values are the column's best (highest) as shown; ties all, blanks never."""
    shown = [None if _is_blank(v) else round(float(v), decimals) for v in values]
    present = [v for v in shown if v is not None]
    if not present:
        return [False] * len(values)
    top = max(present)
    return [v is not None and v == top for v in shown]


def escape_latex(text: str) -> str:
    return _LATEX_RE.sub(lambda m: LATEX_SPECIALS[m.group(0)], text)


def escape_markdown(text: str) -> str:
    """Only the pipe breaks a pipe table's cell."""
    return text.replace("|", r"\|")


# --- a table's rows: one run each -----------------------------------------------------------


class RunRow(Protocol):
    """What the shared helpers read of a RULER or LongBench table row (frozen dataclasses)."""

    @property
    def run(self) -> Run: ...
    @property
    def model_label(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def sample_limit(self) -> int | None: ...
    @property
    def n_samples(self) -> int: ...
    @property
    def n_full(self) -> int: ...


R = TypeVar("R", bound=RunRow)


def match_score_files(
    target: Target,
    inputs: Sequence[str | Path],
    load_scores: Callable[[Path], dict[str, Any]],
) -> list[tuple[Path, dict]]:
    """Per run of ``target`` (in order) its scores file and content (read by ``load_scores``),
    matched by the (model, setting) each file says it holds. ValueError for a file of no run,
    two files of one run, or a run without a file."""
    by_run: dict[tuple[str, str], tuple[Path, dict]] = {}
    runs = {(r.model, r.setting) for r in target.runs}
    for raw in inputs:
        path = Path(raw)
        data = load_scores(path)
        key = (data["model"], data["setting"])
        if key not in runs:
            known = ", ".join(f"{m}/{s}" for m, s in sorted(runs))
            raise ValueError(
                f"{path}: scores of {key[0]}/{key[1]}, which is no run of target "
                f"{target.name} (its runs: {known})"
            )
        if key in by_run:
            raise ValueError(
                f"{path}: a second scores file for run {key[0]}/{key[1]} of target "
                f"{target.name} (the first: {by_run[key][0]})"
            )
        by_run[key] = (path, data)
    for run in target.runs:
        if (run.model, run.setting) not in by_run:
            raise ValueError(
                f"target {target.name}: no scores file for run {run.model}/{run.setting} "
                f"(expected {run.directory}/scores.json among the inputs)"
            )
    return [by_run[(r.model, r.setting)] for r in target.runs]


def load_run_rows(
    target: Target,
    labels: Mapping[str, str],
    inputs: Sequence[str | Path],
    load_scores: Callable[[Path], dict[str, Any]],
    build: Callable[[Run, Path, str, dict[str, Any]], R],
) -> list[R]:
    """One row per run of ``target``, in its order: ``build(run, path, label, scores)`` for
    its scores file, rows that would read the same told apart (:func:`disambiguate`)."""
    rows = []
    for run, (path, data) in zip(
        target.runs, match_score_files(target, inputs, load_scores), strict=True
    ):
        if run.model not in labels:
            raise ValueError(f"{path}: no label given for model {run.model!r}")
        rows.append(build(run, path, labels[run.model], data))
    return disambiguate(rows)


def disambiguate(rows: list[R]) -> list[R]:
    """Rows are told apart by (label, λ); runs sharing them (other samplers) get the setting
    appended to the label."""
    seen = Counter((r.model_label, r.run.ntk_lambda) for r in rows)
    return [
        r
        if seen[(r.model_label, r.run.ntk_lambda)] == 1
        else replace(r, label=f"{r.model_label} ({r.run.setting})")
        for r in rows
    ]


def limited_run_banner(rows: Sequence[RunRow]) -> str | None:
    """The warning for a table on fewer samples than the benchmark's, or None."""
    limits = sorted({r.sample_limit for r in rows if r.sample_limit is not None})
    if not limits and not any(r.n_samples < r.n_full for r in rows):
        return None
    done, full = sum(r.n_samples for r in rows), sum(r.n_full for r in rows)
    head = f"sample limit {', '.join(map(str, limits))} per job" if limits else "fewer samples"
    return (
        f"Limited run ({head}: {done} of {full} samples): these numbers are not comparable "
        "with the paper's."
    )


def row_name(row: RunRow) -> str:
    """ "LLaDA-8B-Base λ=4": how notes name a row."""
    return f"{row.label} λ={format_lambda(row.run.ntk_lambda)}"


# --- the wide table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WideTable:
    """A table as shown: stub columns (Model, λ), then ``groups`` x ``metrics`` value columns,
    group-major (``values[r][g * len(metrics) + m]``)."""

    title: str
    stub: tuple[str, ...]
    groups: tuple[str, ...]
    metrics: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    values: tuple[tuple[float | None, ...], ...]
    notes: tuple[str, ...] = ()
    banner: str | None = None  # a warning shown before the notes (a limited run)
    breaks: frozenset[int] = field(default_factory=frozenset)  # \midrule before these rows

    def __post_init__(self) -> None:
        width = len(self.groups) * len(self.metrics)
        if len(self.rows) != len(self.values):
            raise ValueError(f"{len(self.rows)} row labels for {len(self.values)} value rows")
        for r, (stub, vals) in enumerate(zip(self.rows, self.values, strict=True)):
            if len(stub) != len(self.stub) or len(vals) != width:
                raise ValueError(f"row {r}: {len(stub)} labels and {len(vals)} values")

    @property
    def headers(self) -> list[str]:
        """One header per value column: "4K NIAH" (the metric alone for an unnamed group)."""
        return [f"{g} {m}" if g else m for g in self.groups for m in self.metrics]

    def bold(self) -> list[list[bool]]:
        """Per row, per value column: is it its column's best."""
        columns = list(zip(*self.values, strict=True)) if self.values else []
        flags = [best_flags(col) for col in columns]
        return [[flags[c][r] for c in range(len(columns))] for r in range(len(self.values))]


def to_markdown(table: WideTable) -> str:
    """A title line, a pipe table (best per column bold), then the banner and notes."""
    head = [*table.stub, *table.headers]
    align = [":--"] + ["--:"] * (len(head) - 1)
    lines = [f"# {table.title}", "", _md_row(head), _md_row(align)]
    for stub, vals, bold in zip(table.rows, table.values, table.bold(), strict=True):
        cells = [format_number(v) for v in vals]
        cells = [f"**{c}**" if b else c for c, b in zip(cells, bold, strict=True)]
        lines.append(_md_row([*(escape_markdown(s) for s in stub), *cells]))
    tail = ([f"**{table.banner}**"] if table.banner else []) + [f"- {n}" for n in table.notes]
    if tail:
        lines += ["", *tail]
    return "\n".join(lines) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def to_latex(table: WideTable) -> str:
    """A booktabs ``tabular`` (not a document): one ``\\multicolumn`` header per named group
    with a ``\\cmidrule(lr)`` under it, best per column in ``\\textbf``. The title, banner and
    notes go above it as ``%`` comments."""
    n_stub, n_metrics = len(table.stub), len(table.metrics)
    spec = "l" + "c" * (n_stub - 1) + "r" * (len(table.groups) * n_metrics)
    lines = [f"% {table.title}"]
    lines += [f"% {text}" for text in ([table.banner] if table.banner else []) + list(table.notes)]
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if any(table.groups):
        cells = [""] * n_stub + [
            rf"\multicolumn{{{n_metrics}}}{{c}}{{{escape_latex(g)}}}" for g in table.groups
        ]
        lines.append(_tex_row(cells))
        rules = []
        for k, group in enumerate(table.groups):
            first = n_stub + k * n_metrics + 1
            if group:
                rules.append(rf"\cmidrule(lr){{{first}-{first + n_metrics - 1}}}")
        lines.append(" ".join(rules))
    metrics = [escape_latex(m) for m in table.metrics] * len(table.groups)
    lines.append(_tex_row([*(escape_latex(s) for s in table.stub), *metrics]))
    lines.append(r"\midrule")
    for r, (stub, vals, bold) in enumerate(
        zip(table.rows, table.values, table.bold(), strict=True)
    ):
        if r in table.breaks and r > 0:
            lines.append(r"\midrule")
        cells = [format_number(v) for v in vals]
        cells = [rf"\textbf{{{c}}}" if b else c for c, b in zip(cells, bold, strict=True)]
        lines.append(_tex_row([*(escape_latex(s) for s in stub), *cells]))
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _tex_row(cells: Sequence[str]) -> str:
    return " & ".join(cells) + r" \\"


# --- files ------------------------------------------------------------------------------------


def write_text(path: str | Path, text: str) -> None:
    """UTF-8 with "\\n" line ends on every platform (reruns are byte-identical)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def cell_text(value: Any, column: str, decimals: Mapping[str, int] | None = None) -> str:
    """One CSV field: blank for None/NaN, λ as run ids write it, fixed decimals where asked,
    other floats exactly (repr)."""
    if _is_blank(value):
        return ""
    if column.endswith("ntk_lambda"):
        return format_lambda(value)
    if decimals and column in decimals:
        return format_number(value, decimals[column])
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    path: str | Path,
    decimals: Mapping[str, int] | None = None,
) -> None:
    """Rows to ``path`` in ``columns`` order (a row may lack a column: blank), "\\n" line ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv_module.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell_text(row.get(c), c, decimals) for c in columns])


# --- published numbers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """The paper's numbers from one or more files, concatenated in the order given."""

    files: tuple[str, ...]
    values: dict[tuple[str, float, str], dict[str, float | None]]  # (model, λ, context) -> ...
    pairs: tuple[tuple[str, float], ...]  # (model, λ) in order of first appearance
    contexts: tuple[str, ...]  # in order of first appearance


def load_published(paths: Sequence[str | Path], metrics: Sequence[str]) -> Published | None:
    """The published rows of ``paths`` (None when there are none: nothing to compare with).

    ValueError, naming the file, for a missing column, a row with more or fewer cells than the
    header, a value that is not a number (line and column named: :func:`read_published_csv`),
    or a (model, λ, context) that appears twice (in one file or across files)."""
    if not paths:
        return None
    values: dict[tuple[str, float, str], dict[str, float | None]] = {}
    origin: dict[tuple[str, float, str], tuple[int, str]] = {}  # -> (input index, file)
    for k, raw in enumerate(paths):
        path = str(raw)
        for line, key, row in _published_rows(path, metrics):
            if key in values:
                first, first_path = origin[key]
                where = path if first == k else f"{first_path} and {path}"
                model, lam, context = key
                raise ValueError(
                    f"{where}: published row {model}, λ {format_lambda(lam)}, {context} "
                    f"appears twice (line {line} of {path})"
                )
            values[key] = row
            origin[key] = (k, path)
    pairs = tuple(dict.fromkeys((m, lam) for m, lam, _c in values))
    contexts = tuple(dict.fromkeys(c for _m, _l, c in values))
    return Published(tuple(str(p) for p in paths), values, pairs, contexts)


def _published_rows(
    path: str, metrics: Sequence[str]
) -> list[tuple[int, tuple[str, float, str], dict[str, float | None]]]:
    _header, records = read_published_csv(
        path,
        required=(*KEY_COLUMNS, *metrics),
        numbers=("ntk_lambda", *metrics),
        filled=("ntk_lambda",),
    )
    out = []
    for i, rec in records:
        key = (rec["model"].strip(), float(rec["ntk_lambda"]), rec["context"].strip())
        row = {m: None if rec[m] is None else float(rec[m]) for m in metrics}
        out.append((i, key, row))
    return out


def read_published_csv(
    path: str | Path,
    required: Sequence[str] = (),
    numbers: Sequence[str] = (),
    filled: Sequence[str] = (),
    what: str = "published numbers",
) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(header, [(line, row)]) of a CSV of the paper's numbers: the one reader of the tables
    and the figures. Every row must have exactly the header's cells (a row one cell short would
    shift its values a column left); the ``numbers`` columns it has become int or float (None
    when blank, except in the ``filled`` columns). ValueError naming the file (and line and
    column) for anything else: an unreadable file, a column named twice, a ``required`` column
    absent, a row of another width, a cell that is not a number, a blank ``filled`` cell."""
    path = str(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv_module.reader(f)
            header = [h.strip() for h in next(reader, [])]
            rows = [(reader.line_num, cells) for cells in reader if cells]
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read {what} ({e})") from None
    except csv_module.Error as e:
        raise ValueError(f"{path}: line {reader.line_num}: not CSV ({e})") from None
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise ValueError(f"{path}: column(s) {', '.join(twice)} named twice in the header")
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"{path}: published table lacks column(s) {', '.join(missing)} "
            f"(has {', '.join(header) or 'none'})"
        )
    out = []
    for line, cells in rows:
        if len(cells) != len(header):
            off = "missing" if len(cells) < len(header) else "too many"
            raise ValueError(
                f"{path}: line {line}: {len(cells)} cells, the header has {len(header)} "
                f"({', '.join(header)}): cell(s) {off}"
            )
        row: dict[str, Any] = dict(zip(header, cells, strict=True))
        for column in numbers:
            if column in row:
                row[column] = published_number(path, line, column, row[column])
        for column in filled:
            if column in row and (row[column] is None or not str(row[column]).strip()):
                raise ValueError(f"{path}: line {line}: {column} is blank")
        out.append((line, row))
    return header, out


def published_number(path: str, line: int, column: str, text: str | None) -> int | float | None:
    """A published cell as a number (an int when written as one), None when blank."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}: line {line}: {column} {text!r} is not a finite number")
    return value


# --- comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    """What the comparison needs of one table row."""

    model: str  # the model key
    label: str  # the row's label as the table shows it
    match_label: str  # the model's display label, looked up in the published `model` column
    ntk_lambda: float
    values: Mapping[tuple[str, str], float | None]  # (context, metric) -> reproduced
    family: str | None = None  # ar | llada | dream: position matching stays within a family


# The paper's model labels name their family first (LLaMA3-8B-Base, LLaDA-1.5, Dream-v0-7B-...).
_LABEL_FAMILIES = (("llada", "llada"), ("llama", "ar"), ("dream", "dream"))


def label_family(label: str) -> str | None:
    """The family a published model label names (None: none known)."""
    low = label.lower()
    return next((fam for prefix, fam in _LABEL_FAMILIES if low.startswith(prefix)), None)


def comparison_rows(
    rows: Sequence[CompareRow],
    contexts: Sequence[str],
    metrics: Sequence[str],
    published: Published | None,
) -> list[dict[str, Any]]:
    """One dict per (row, context, metric) with :data:`COMPARISON_COLUMNS`.

    When any row's (label, λ) is published, every row is matched by (label, λ, context)
    exactly. Otherwise (a scaled-down config: other models, other contexts) the i-th row of a
    family is matched to the i-th published (model, λ) of that family (rows without a family:
    the i-th of all), the j-th context to the j-th published one, and the note says so."""
    by_key = published is not None and any(
        (r.match_label, r.ntk_lambda) in published.pairs for r in rows
    )
    out = []
    seen: dict[str | None, int] = {}
    for i, row in enumerate(rows):
        rank = seen.get(row.family, 0)
        seen[row.family] = rank + 1
        for j, context in enumerate(contexts):
            if published is None:
                key, note = None, NOTE_NO_PUBLISHED
            elif by_key:
                key, note = _exact_key(row, context, published)
            else:
                key, note = _position_key(row.family, rank, j, published)
            theirs = published.values[key] if published is not None and key else {}
            for metric in metrics:
                mine = row.values.get((context, metric))
                paper = theirs.get(metric)
                out.append(
                    {
                        "row": i + 1,
                        "model": row.model,
                        "label": row.label,
                        "ntk_lambda": row.ntk_lambda,
                        "context": context,
                        "metric": metric,
                        "published_model": key[0] if key else None,
                        "published_ntk_lambda": key[1] if key else None,
                        "published_context": key[2] if key else None,
                        "published": paper,
                        "reproduced": mine,
                        "difference": difference(mine, paper),
                        "note": note,
                    }
                )
    return out


def _exact_key(
    row: CompareRow, context: str, published: Published
) -> tuple[tuple[str, float, str] | None, str]:
    key = (row.match_label, row.ntk_lambda, context)
    return (key, "") if key in published.values else (None, NOTE_NOT_IN_PAPER)


def _position_key(
    family: str | None, i: int, j: int, published: Published
) -> tuple[tuple[str, float, str] | None, str]:
    pairs = [p for p in published.pairs if family is None or label_family(p[0]) == family]
    if i < len(pairs) and j < len(published.contexts):
        key = (*pairs[i], published.contexts[j])
        if key in published.values:
            return key, NOTE_BY_POSITION
    return None, NOTE_BEYOND


def difference(reproduced: float | None, published: float | None) -> float | None:
    """reproduced - published, from the reproduced number as the CSV writes it (2 decimals),
    so the three columns agree."""
    if _is_blank(reproduced) or _is_blank(published):
        return None
    return round(round(float(reproduced), CSV_DECIMALS) - float(published), CSV_DECIMALS)
