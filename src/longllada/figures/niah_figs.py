"""NeedleBench needle-in-a-haystack figures: Figure 1b and Figures 2, 3, 6, 7, 8, 9, 10, 11.

Each run of a target has one ``scores.json`` (written by the NIAH scoring stage) holding its
cells (mean score per (length, depth)), its Average Depth Score per length (``by_length``, the
mean over depths) and its Overall Score (the mean of all cells). Those numbers are drawn as
given; nothing is recomputed from the samples.

Two kinds of target:

* ``niah_heatmaps`` (Figures 2, 3, 6-11): one panel per run, up to four in a row, as in the paper
  and OpenCompass's NeedleBench summarizer: depth (rows, 0 at the top) x length (columns) coloured
  red-yellow-green over 0..100, one shared colorbar, the Average Depth Score as a white line with
  its values on a twin 0..100 axis, the panel titled "Overall Score: xx.xx" and captioned
  "(a) <model>, steps S, λ=L" under its x label.
* ``niah_by_length`` (Figure 1b): the Average Depth Score against length (log2 x axis: the lengths
  double, and a demo's short ones stay readable beside the paper's), one line per run; the
  paper's numbers (from the Figure 2 cells file) dashed grey.

A run on fewer samples than the full grid (``sample_limit`` set, or ``n_samples < n_full``) gets a
red banner saying so, so a demo or budget figure is never mistaken for the paper's.

Beside ``<name>.pdf`` two CSVs are written:

* the figure's numbers (:data:`FIGURE_COLUMNS`), tidy: per panel one ``cell`` row per
  (length, depth) (heatmaps only), one ``average_depth_score`` row per length (depth empty) and
  one ``overall`` row (length and depth empty);
* the comparison (:data:`COMPARISON_COLUMNS`): the published number beside ours, ``difference``
  = reproduced - published. The published file is ``target.spec["published"]``, recognised by its
  columns: the overall-scores file (``figure,model,steps,ntk_lambda,overall``; panel k of
  ``figureN_*`` is matched to figure id ``N`` + ``"abcd..."[k]``), or the Figure 2 cells file
  (``model,length,depth,score``; see :func:`cells_panel_models` for which model each panel is
  compared with). Cells and lengths are outer-joined, so a demo on other lengths shows each side
  on its own rows.
"""

from __future__ import annotations

import csv as csv_module
import json
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from longllada.config import Target
from longllada.figures import style
from longllada.figures.style import plt
from longllada.rope import format_lambda
from longllada.tables.common import read_published_csv

KINDS = ("niah_heatmaps", "niah_by_length")
FIGURE_COLUMNS = [
    "panel",
    "kind",
    "model",
    "label",
    "setting",
    "ntk_lambda",
    "steps",
    "length",
    "depth",
    "score",
    "n",
]
COMPARISON_COLUMNS = [
    "panel",
    "kind",
    "length",
    "depth",
    "published_figure",
    "published_model",
    "published_steps",
    "published_ntk_lambda",
    "published",
    "reproduced",
    "difference",
]
ROW_KINDS = ("cell", "average_depth_score", "overall")
SCORE_KEYS = (
    "benchmark",
    "model",
    "setting",
    "ntk_lambda",
    "sampler",
    "sample_limit",
    "n_samples",
    "n_full",
    "cells",
    "by_length",
    "overall",
)
OVERALL_COLUMNS = {"figure", "model", "steps", "ntk_lambda", "overall"}
CELLS_COLUMNS = {"model", "length", "depth", "score"}
# The paper's Figure 2 panels (a-d): model, steps (None: autoregressive), λ. The cells file lists
# its models in another order (LLaMA first), so its panels are put in this order (a test checks
# it against niah_overall_scores.csv).
FIGURE2_PANELS: tuple[tuple[str, str, int | None, float], ...] = (
    ("2a", "LLaDA-8B-Base", 32, 1.0),
    ("2b", "LLaMA3-8B-Base", None, 1.0),
    ("2c", "LLaDA-8B-Instruct", 32, 1.0),
    ("2d", "LLaMA3-8B-Instruct", None, 1.0),
)
# OpenCompass's NeedleBench summarizer's colours: red (0) - yellow - green (100).
# OpenCompass's NeedleBench summarizer's colours (tests/test_opencompass_env.py reads them there)
NEEDLEBENCH_COLORS = ("#F0496E", "#EBB839", "#0CD79F")
CMAP = LinearSegmentedColormap.from_list("needlebench", list(NEEDLEBENCH_COLORS))
PANELS_PER_ROW = 4
PAPER_STYLE = {"color": "0.45", "ls": "--", "lw": 1.0, "alpha": 0.8}
DIFF_DIGITS = 6  # published numbers have 2 decimals; this only hides float noise


@dataclass(frozen=True)
class Panel:
    """One run's numbers as its scores.json gives them."""

    letter: str
    path: Path
    model: str
    label: str
    setting: str
    ntk_lambda: float
    steps: Any  # int, "gen_length", or None (autoregressive: no sampler)
    cells: dict[tuple[int, int], tuple[float, int | None]]  # (length, depth) -> (score, n)
    by_length: dict[int, float]
    overall: float
    sample_limit: int | None
    n_samples: int
    n_full: int


@dataclass(frozen=True)
class PublishedPanel:
    """The paper's numbers for one panel; ``cells`` is empty for the overall-scores file."""

    figure: str | None
    model: str
    steps: Any
    ntk_lambda: float | None
    overall: float | None
    cells: dict[tuple[int, int], float] = field(default_factory=dict)

    @property
    def by_length(self) -> dict[int, float]:
        per: dict[int, list[float]] = {}
        for (length, _depth), score in sorted(self.cells.items()):
            per.setdefault(length, []).append(score)
        return {n: float(np.mean(v)) for n, v in per.items()}


# --- small helpers ----------------------------------------------------------------------------


def format_length(n: int) -> str:
    """A context length as the paper writes it: 2000 -> "2K", 32000 -> "32K", 128 -> "128"."""
    n = int(n)
    return f"{n // 1000}K" if n and n % 1000 == 0 else str(n)


def panel_descriptor(label: str | None, ntk_lambda: float, steps: Any = None) -> str:
    """ "LLaDA-8B-Base, steps 32, λ=1"; without steps (autoregressive) "LLaMA3-8B-Base, λ=1".

    ``label=None`` gives the settings alone ("steps 32, λ=1").
    """
    parts = [] if label is None else [label]
    if steps is not None:
        parts.append(f"steps {steps}")
    parts.append(f"λ={float(ntk_lambda):g}")
    return ", ".join(parts)


def figure_number(target_name: str) -> str | None:
    """The paper's figure number in a target name: "figure10_niah_steps" -> "10"."""
    m = re.match(r"figure(\d+)", target_name)
    return m.group(1) if m else None


def banner_text(panels: Sequence[Panel]) -> str | None:
    """The red warning for a figure on fewer samples than the paper's grid, or None."""
    limits = sorted({p.sample_limit for p in panels if p.sample_limit is not None})
    short = any(p.n_samples < p.n_full for p in panels)
    if not limits and not short:
        return None
    done = sum(p.n_samples for p in panels)
    full = sum(p.n_full for p in panels)
    head = (
        f"sample limit {', '.join(str(n) for n in limits)} per job" if limits else "demo/budget run"
    )
    return f"{head}: {done} of {full} samples, not the paper's full grid"


# --- reading ----------------------------------------------------------------------------------


def load_scores(path: str | Path) -> dict[str, Any]:
    """A run's scores.json, checked for the keys this module reads (ValueError names the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read NIAH scores ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: NIAH scores must be a JSON object")
    missing = [k for k in SCORE_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: NIAH scores lack key(s) {', '.join(missing)}")
    if data["benchmark"] != "niah":
        raise ValueError(f"{path}: benchmark is {data['benchmark']!r}, not 'niah'")
    for key, fields in (
        ("cells", ("length", "depth", "score")),
        ("by_length", ("length", "score")),
    ):
        rows = data[key]
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"{path}: {key} must be a non-empty list")
        for i, row in enumerate(rows):
            lacking = [f for f in fields if f not in row]
            if lacking:
                raise ValueError(f"{path}: {key}[{i}] lacks key(s) {', '.join(lacking)}")
    return data


def _panel(letter: str, path: Path, data: dict[str, Any], label: str) -> Panel:
    cells: dict[tuple[int, int], tuple[float, int | None]] = {}
    for row in data["cells"]:
        key = (int(row["length"]), int(row["depth"]))
        if key in cells:
            raise ValueError(f"{path}: cell length {key[0]} depth {key[1]} appears twice")
        n = row.get("n")
        cells[key] = (float(row["score"]), None if n is None else int(n))
    sampler = data["sampler"] or {}
    return Panel(
        letter=letter,
        path=path,
        model=data["model"],
        label=label,
        setting=data["setting"],
        ntk_lambda=float(data["ntk_lambda"]),
        steps=sampler.get("steps"),
        cells=dict(sorted(cells.items())),
        by_length={int(r["length"]): float(r["score"]) for r in data["by_length"]},
        overall=float(data["overall"]),
        sample_limit=data["sample_limit"],
        n_samples=int(data["n_samples"]),
        n_full=int(data["n_full"]),
    )


def load_panels(
    target: Target, labels: dict[str, str], inputs: Sequence[str | Path]
) -> list[Panel]:
    """One panel per run, the k-th input being run k; each file must be that run's scores."""
    if len(inputs) != len(target.runs):
        names = ", ".join(str(p) for p in inputs) or "none"
        raise ValueError(
            f"target {target.name}: {len(inputs)} scores file(s) ({names}) for "
            f"{len(target.runs)} run(s)"
        )
    if len(inputs) > len(string.ascii_lowercase):
        raise ValueError(f"target {target.name}: more than 26 panels")
    panels = []
    for k, (run, raw) in enumerate(zip(target.runs, inputs, strict=True)):
        path = Path(raw)
        data = load_scores(path)
        # Inputs are matched to runs by position: catch a misordered list here, not in the plot.
        if (data["model"], data["setting"]) != (run.model, run.setting):
            raise ValueError(
                f"{path}: scores of {data['model']}/{data['setting']}, but run {k} of target "
                f"{target.name} is {run.model}/{run.setting}"
            )
        if data["model"] not in labels:
            raise ValueError(f"{path}: no label given for model {data['model']!r}")
        panels.append(_panel(string.ascii_lowercase[k], path, data, labels[data["model"]]))
    return panels


def load_published(path: str | Path) -> tuple[str, pd.DataFrame]:
    """("overall" | "cells", table): which published file this is, told by its columns."""
    path = Path(path)
    header, rows = read_published_csv(
        path,
        numbers=("steps", "ntk_lambda", "overall", "length", "depth", "score"),
        filled=("overall", "length", "depth", "score"),
        what="published NIAH numbers",
    )
    df = pd.DataFrame([row for _line, row in rows], columns=header)
    columns = set(df.columns)
    if columns >= OVERALL_COLUMNS:
        if df["figure"].duplicated().any():
            dup = sorted(set(df["figure"][df["figure"].duplicated()]))
            raise ValueError(f"{path}: figure id(s) {', '.join(dup)} appear more than once")
        return "overall", df
    if columns >= CELLS_COLUMNS:
        return "cells", df
    raise ValueError(
        f"{path}: unknown published NIAH columns {sorted(columns)} (expected "
        f"{','.join(sorted(OVERALL_COLUMNS))} or {','.join(sorted(CELLS_COLUMNS))})"
    )


def _opt_number(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    f = float(value)
    return int(f) if f.is_integer() else f


def cells_panel_models(file_models: Iterable[str]) -> list[str]:
    """The cells file's models in panel order: the paper's Figure 2 order (a LLaDA-8B-Base,
    b LLaMA3-8B-Base, c LLaDA-8B-Instruct, d LLaMA3-8B-Instruct) for those it has, then any other
    models in order of first appearance. (The file itself lists LLaMA first.)"""
    present = list(dict.fromkeys(file_models))
    paper = [model for _fig, model, _s, _l in FIGURE2_PANELS if model in present]
    return paper + [m for m in present if m not in paper]


def published_panels(
    kind: str, table: pd.DataFrame, number: str | None, panels: Sequence[Panel]
) -> list[PublishedPanel | None]:
    """The published panel each of ours is compared with (None: nothing published for it).

    Overall-scores file: panel k <-> figure id ``number + "abc..."[k]``, by position.
    Cells file: the published model with the panel's label when the file has it (the paper's
    config), else the k-th model of :func:`cells_panel_models` (a demo's tiny models).
    """
    out: list[PublishedPanel | None] = []
    if kind == "overall":
        by_id = {str(r["figure"]): r for _, r in table.iterrows()}
        for panel in panels:
            row = by_id.get(f"{number}{panel.letter}") if number else None
            out.append(
                None
                if row is None
                else PublishedPanel(
                    figure=str(row["figure"]),
                    model=str(row["model"]),
                    steps=_opt_number(row["steps"]),
                    ntk_lambda=_opt_number(row["ntk_lambda"]),
                    overall=float(row["overall"]),
                )
            )
        return out
    order = cells_panel_models(table["model"])
    paper = {model: (fig, steps, lam) for fig, model, steps, lam in FIGURE2_PANELS}
    for k, panel in enumerate(panels):
        model = panel.label if panel.label in order else (order[k] if k < len(order) else None)
        if model is None:
            out.append(None)
            continue
        rows = table[table["model"] == model]
        cells = {(int(r["length"]), int(r["depth"])): float(r["score"]) for _, r in rows.iterrows()}
        fig, steps, lam = paper.get(model, (None, None, None))
        out.append(
            PublishedPanel(
                figure=fig,
                model=model,
                steps=steps,
                ntk_lambda=lam,
                overall=float(np.mean(list(cells.values()))),
                cells=dict(sorted(cells.items())),
            )
        )
    return out


# --- tables -----------------------------------------------------------------------------------


def figure_rows(panels: Sequence[Panel], with_cells: bool = True) -> list[dict[str, Any]]:
    """The numbers drawn, one dict per :data:`FIGURE_COLUMNS` row."""
    rows = []
    for p in panels:
        base = {
            "panel": p.letter,
            "model": p.model,
            "label": p.label,
            "setting": p.setting,
            "ntk_lambda": p.ntk_lambda,
            "steps": p.steps,
        }
        if with_cells:
            for (length, depth), (score, n) in p.cells.items():
                rows.append(
                    {
                        **base,
                        "kind": "cell",
                        "length": length,
                        "depth": depth,
                        "score": score,
                        "n": n,
                    }
                )
        for length, score in sorted(p.by_length.items()):
            rows.append({**base, "kind": "average_depth_score", "length": length, "score": score})
        rows.append({**base, "kind": "overall", "score": p.overall})
    return [{c: r.get(c) for c in FIGURE_COLUMNS} for r in rows]


def _difference(reproduced: float | None, published: float | None) -> float | None:
    if reproduced is None or published is None:
        return None
    return round(reproduced - published, DIFF_DIGITS)


def comparison_rows(
    panels: Sequence[Panel],
    published: Sequence[PublishedPanel | None],
    with_cells: bool = True,
) -> list[dict[str, Any]]:
    """Published beside reproduced, one dict per :data:`COMPARISON_COLUMNS` row.

    Per panel: ``cell`` rows (``with_cells``) and ``average_depth_score`` rows over the union of
    both sides' keys, then the ``overall`` row. The published panel's figure, model, steps and λ
    are written on every row of the panel, its number only where it has one.
    """
    if len(published) != len(panels):
        raise ValueError(f"{len(published)} published panels for {len(panels)} panels")
    rows = []
    for p, pub in zip(panels, published, strict=True):
        meta = {
            "panel": p.letter,
            "published_figure": pub.figure if pub else None,
            "published_model": pub.model if pub else None,
            "published_steps": pub.steps if pub else None,
            "published_ntk_lambda": pub.ntk_lambda if pub else None,
        }
        pub_cells = pub.cells if pub else {}
        pub_lengths = pub.by_length if pub else {}
        blocks: list[tuple[str, dict, dict]] = []
        if with_cells:
            ours_cells = {key: score for key, (score, _n) in p.cells.items()}
            blocks.append(("cell", ours_cells, pub_cells))
        blocks.append(("average_depth_score", p.by_length, pub_lengths))
        for kind, ours, theirs in blocks:
            for key in sorted(set(ours) | set(theirs)):
                length, depth = key if isinstance(key, tuple) else (key, None)
                mine, paper = ours.get(key), theirs.get(key)
                rows.append(
                    {
                        **meta,
                        "kind": kind,
                        "length": length,
                        "depth": depth,
                        "published": paper,
                        "reproduced": mine,
                        "difference": _difference(mine, paper),
                    }
                )
        paper = pub.overall if pub else None
        rows.append(
            {
                **meta,
                "kind": "overall",
                "published": paper,
                "reproduced": p.overall,
                "difference": _difference(p.overall, paper),
            }
        )
    return [{c: r.get(c) for c in COMPARISON_COLUMNS} for r in rows]


def _text(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column.endswith("ntk_lambda"):
        return format_lambda(value)  # as in run ids: 1, 4, 2.5
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: str | Path) -> None:
    """Rows to ``path``; None is an empty field, floats are written exactly (repr)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv_module.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row[c], c) for c in columns])


# --- drawing ----------------------------------------------------------------------------------


def _add_banner(fig: Any, banner: str | None) -> None:
    if banner:
        fig.suptitle(banner, color="#C00000", fontsize=9, fontweight="bold")


def _heatmap_panel(ax: Any, p: Panel, first: bool) -> Any:
    lengths = sorted({n for n, _d in p.cells} | set(p.by_length))
    depths = sorted({d for _n, d in p.cells})
    grid = np.full((len(depths), len(lengths)), np.nan)
    for (length, depth), (score, _n) in p.cells.items():
        grid[depths.index(depth), lengths.index(length)] = score
    x_edges = np.arange(len(lengths) + 1) - 0.5
    y_edges = np.arange(len(depths) + 1) - 0.5
    ax.set_facecolor("0.85")  # a cell the run lacks shows grey, not as a score
    mesh = ax.pcolormesh(
        x_edges,
        y_edges,
        np.ma.masked_invalid(grid),
        cmap=CMAP,
        vmin=0,
        vmax=100,
        edgecolors="white",
        linewidth=0.3,
    )
    ax.set_ylim(len(depths) - 0.5, -0.5)  # depth 0 at the top
    ax.set_xticks(range(len(lengths)), [format_length(n) for n in lengths])
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    ax.tick_params(length=2)
    ax.set_xlabel("Token Limit")
    if first:
        ax.set_ylabel("Depth Percent")
    ax.set_title(f"Overall Score: {p.overall:.2f}")
    for spine in ax.spines.values():
        spine.set_visible(False)

    # The Average Depth Score on its own 0..100 axis, over the column centres.
    twin = ax.twinx()
    xs = [lengths.index(n) for n in sorted(p.by_length)]
    ys = [p.by_length[n] for n in sorted(p.by_length)]
    # clip_on=False: a point at 0 or 100 sits on the frame and must show whole.
    twin.plot(xs, ys, color="white", marker="o", ms=4, lw=1.6, mec="0.25", mew=0.6, clip_on=False)
    for x, y in zip(xs, ys, strict=True):
        high = y > 85  # label below a point near the top, above it otherwise
        twin.annotate(
            f"{y:.2f}",
            (x, y),
            xytext=(0, -5 if high else 5),
            textcoords="offset points",
            ha="center",
            va="top" if high else "bottom",
            fontsize=6.5,
            color="0.1",
        )
    twin.set_ylim(0, 100)
    twin.set_yticks([])
    twin.spines[:].set_visible(False)
    ax.set_xlim(-0.5, len(lengths) - 0.5)
    ax.annotate(
        f"({p.letter}) {panel_descriptor(p.label, p.ntk_lambda, p.steps)}",
        xy=(0.5, 0),
        xycoords=ax.xaxis.label,
        xytext=(0, -6),
        textcoords="offset points",
        ha="center",
        va="top",
        fontsize=9,
    )
    return mesh


def plot_heatmaps(panels: Sequence[Panel], pdf: str | Path, banner: str | None = None) -> None:
    """One NeedleBench heatmap per panel, four to a row, one shared colorbar."""
    style.apply_style()
    ncols = min(PANELS_PER_ROW, len(panels))
    nrows = math.ceil(len(panels) / PANELS_PER_ROW)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.1 * ncols + 0.8, 3.3 * nrows + (0.3 if banner else 0)),
        layout="constrained",
        squeeze=False,
    )
    mesh = None
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.set_visible(False)
            continue
        mesh = _heatmap_panel(ax, panels[k], first=k % PANELS_PER_ROW == 0)
    cbar = fig.colorbar(mesh, ax=axes.ravel().tolist(), shrink=0.8, pad=0.01, aspect=30)
    cbar.set_label("Score")
    cbar.outline.set_visible(False)
    _add_banner(fig, banner)
    try:
        style.save(fig, pdf)
    finally:
        plt.close(fig)


def line_labels(panels: Sequence[Panel]) -> list[str]:
    """A line's legend label: the model's, plus its settings when the model has several runs."""
    runs_of = Counter(p.model for p in panels)
    return [
        p.label
        if runs_of[p.model] == 1
        else f"{p.label} ({panel_descriptor(None, p.ntk_lambda, p.steps)})"
        for p in panels
    ]


def plot_by_length(
    panels: Sequence[Panel],
    pdf: str | Path,
    published: Sequence[PublishedPanel | None] = (),
    banner: str | None = None,
) -> None:
    """Figure 1b: the Average Depth Score against length, the paper's lines dashed grey."""
    style.apply_style()
    fig, ax = plt.subplots(figsize=(5.6, 3.6), layout="constrained")
    handles: list[Line2D] = []
    xs_all: set[int] = set()
    for k, (p, label) in enumerate(zip(panels, line_labels(panels), strict=True)):
        xs = sorted(p.by_length)
        (line,) = ax.plot(
            xs, [p.by_length[n] for n in xs], marker="o", ms=4, color=f"C{k % 10}", label=label
        )
        handles.append(line)
        xs_all |= set(xs)
    drawn: set[str] = set()
    for pub in published:
        if pub is None or not pub.cells or pub.model in drawn:
            continue
        drawn.add(pub.model)
        curve = pub.by_length
        ax.plot(list(curve), list(curve.values()), marker=".", zorder=1, **PAPER_STYLE)
        xs_all |= set(curve)
    if drawn:
        handles.append(Line2D([], [], marker=".", label="paper", **PAPER_STYLE))
    # Lengths double from one to the next (2K..32K; a demo's 128..1024): a log axis spaces them
    # evenly and keeps a demo's short lengths readable beside the paper's.
    ax.set_xscale("log", base=2)
    ticks = sorted(xs_all)
    ax.set_xticks(ticks, [format_length(n) for n in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(-3, 103)
    ax.set_xlabel("Context length (tokens)")
    ax.set_ylabel("Average Depth Score")
    ax.set_title("Needle in a haystack: retrieval by length")
    ax.legend(handles=handles, loc="best", frameon=False)
    _add_banner(fig, banner)
    try:
        style.save(fig, pdf)
    finally:
        plt.close(fig)


# --- entry ------------------------------------------------------------------------------------


def plot_target(
    target: Target,
    labels: dict[str, str],
    inputs: Sequence[str | Path],
    pdf: str | Path,
    csv: str | Path,
    comparison: str | Path,
) -> None:
    """The rule's entry: the figure to ``pdf``, its numbers to ``csv``, the paper's beside ours
    to ``comparison``. ``labels``: model key -> display label; ``inputs``: one scores.json per
    run of ``target``, in the order of ``target.runs``."""
    if target.kind not in KINDS:
        raise ValueError(f"target {target.name}: kind {target.kind!r} is not one of {KINDS}")
    panels = load_panels(target, labels, inputs)
    spec_published = target.spec.get("published")
    if spec_published:
        kind, table = load_published(spec_published)
        published = published_panels(kind, table, figure_number(target.name), panels)
    else:
        published = [None] * len(panels)
    heatmaps = target.kind == "niah_heatmaps"
    banner = banner_text(panels)
    if heatmaps:
        plot_heatmaps(panels, pdf, banner)
    else:
        plot_by_length(panels, pdf, published, banner)
    write_csv(figure_rows(panels, with_cells=heatmaps), FIGURE_COLUMNS, csv)
    write_csv(
        comparison_rows(panels, published, with_cells=heatmaps), COMPARISON_COLUMNS, comparison
    )
