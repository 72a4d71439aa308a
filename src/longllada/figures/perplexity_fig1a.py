"""Figure 1a: perplexity against context length (0 to 16K), one line per model.

Curves are the rows of :mod:`longllada.likelihood` (``{"context_tokens", "ppl"}``). The paper
drew a linear y axis and cut its top at (auto limit - 30), i.e. about 35, so the LLaMA curves
leave the frame past ~13K. We default to a log y axis instead: LLaMA's rise past 8K (to ~60)
and LLaDA's flat ~6-8 then both stay readable in one frame (``log_y=False`` gives a linear one).

Beside the figure, ``<name>.comparison.csv`` (:data:`COMPARISON_COLUMNS`) sets each curve's
points beside the paper's at the same context length (outer join: a shorter or longer curve
shows each side on its own rows). A run is compared with the published curve of its label; a
model the paper does not have (a demo's tiny one) with the paper's model of the same family and
variant, said in the ``note``. Runs at λ != 1 have no published curve (Figure 1a is direct
extrapolation).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from longllada.config import Model, Target
from longllada.figures import style
from longllada.figures.style import plt
from longllada.tables.common import label_family, read_published_csv, write_csv

X_TICKS = [0, 4000, 8000, 12000, 16000]
COMPARISON_COLUMNS = [
    "model",
    "label",
    "ntk_lambda",
    "context_tokens",
    "published_model",
    "published",
    "reproduced",
    "difference",
    "relative_difference",
    "note",
]
NOTE_BY_FAMILY = "matched by family and variant: not the paper's model"
NOTE_NOT_PUBLISHED = "not in the paper"
PAPER_STYLE = {"color": "0.45", "ls": "--", "lw": 1.0, "alpha": 0.8}


def _plain_number(y: float, _pos: int) -> str:
    return f"{y:g}"


def plot_figure1a(
    curves: dict[str, list[dict]],
    out_path: str | Path,
    published: pd.DataFrame | None = None,
    t_train: dict[str, int] | None = None,
    log_y: bool = True,
    x_max: int | None = None,
) -> None:
    """Draw the perplexity curves to ``out_path`` (``.pdf`` or ``.png`` + ``.pdf``).

    ``curves``: label -> rows with ``context_tokens`` and ``ppl``. ``published``: the paper's
    curves (columns ``model, context_tokens, perplexity``, as in
    ``config/published/figure1a_perplexity.csv``); those whose ``model`` is one of the labels
    are overlaid dashed grey, with one legend entry "paper". ``t_train``: label -> training
    length, drawn as a dotted vertical line in the model's colour. ``x_max``: right end of the
    x axis (default: the largest x rounded up to 16384 or a multiple of 4096).
    """
    if not curves:
        raise ValueError("need at least one curve")
    style.apply_style()
    fig, ax = plt.subplots(figsize=(6.0, 3.6), layout="constrained")
    t_train = t_train or {}
    xs_all: list[float] = []
    ys_all: list[float] = []
    handles: list[Line2D] = []
    for idx, (label, rows) in enumerate(curves.items()):
        if not rows:
            raise ValueError(f"curve {label!r} has no rows")
        x = np.array([r["context_tokens"] for r in rows], dtype=float)
        y = np.array([r["ppl"] for r in rows], dtype=float)
        color = f"C{idx % 10}"
        (line,) = ax.plot(x, y, color=color, label=label, zorder=3)
        handles.append(line)
        xs_all += x.tolist()
        ys_all += y.tolist()
        if label in t_train:
            ax.axvline(t_train[label], color=color, ls=":", lw=1.0, zorder=1)
    if published is not None:
        shown = published[published["model"].isin(list(curves))]
        for _, rows in shown.groupby("model", sort=False):
            ax.plot(rows["context_tokens"], rows["perplexity"], zorder=2, **PAPER_STYLE)
        if len(shown):
            handles.append(Line2D([], [], label="paper", **PAPER_STYLE))
            xs_all += shown["context_tokens"].tolist()
            ys_all += shown["perplexity"].tolist()
    if t_train:
        handles.append(Line2D([], [], color="0.3", ls=":", lw=1.0, label="$T_{train}$"))

    right = x_max or max(16384, int(np.ceil(max(xs_all) / 4096)) * 4096)
    ax.set_xlim(0, right)
    if right <= 16384:  # the paper's ticks; beyond 16K matplotlib's own
        ax.set_xticks([t for t in X_TICKS if t <= right])
    if log_y:
        ax.set_yscale("log")
        y = np.array([v for v in ys_all if np.isfinite(v) and v > 0])
        ax.set_ylim(y.min() / 1.25, y.max() * 1.25)
        # Plain numbers (5, 10, 20, 50) read better than 10^1 for perplexities.
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(_plain_number))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Context length")
    ax.set_ylabel("Perplexity")
    ax.set_title("Perplexity")
    ax.legend(handles=handles, loc="upper left", frameon=False)
    try:
        style.save(fig, out_path)
    finally:
        plt.close(fig)


def load_published(csv_path: str | Path) -> pd.DataFrame:
    """The paper's curves: ``config/published/figure1a_perplexity.csv`` (read as the tables'
    published files are: every row complete, every number a number, file and line named)."""
    columns = ("model", "context_tokens", "perplexity")
    header, rows = read_published_csv(
        csv_path, required=columns, numbers=columns[1:], filled=columns[1:]
    )
    return pd.DataFrame([row for _line, row in rows], columns=header)


def published_model_for(model: Model, ntk_lambda: float, published_models: list[str]) -> tuple:
    """(the published curve a run is compared with or None, the note saying how)."""
    if ntk_lambda != 1:
        return None, NOTE_NOT_PUBLISHED
    if model.label in published_models:
        return model.label, ""
    for name in published_models:  # the paper's labels end in -Base / -Instruct
        if label_family(name) == model.family and name.lower().endswith(model.variant):
            return name, NOTE_BY_FAMILY
    return None, NOTE_NOT_PUBLISHED


def comparison_rows(
    runs: list[tuple[Model, float, str, list[dict]]], published: pd.DataFrame | None
) -> list[dict]:
    """One row per (run, context length) of either side. ``runs``: (model, λ, label, curve)."""
    pub_models = [] if published is None else list(dict.fromkeys(published["model"]))
    rows = []
    for model, lam, label, curve in runs:
        name, note = published_model_for(model, lam, pub_models)
        ours = {int(r["context_tokens"]): float(r["ppl"]) for r in curve}
        theirs: dict[int, float] = {}
        if name is not None and published is not None:
            sel = published[published["model"] == name]
            tokens_col, ppl_col = sel["context_tokens"].astype(int), sel["perplexity"].astype(float)
            theirs = dict(zip(tokens_col, ppl_col, strict=True))
        for tokens in sorted(set(ours) | set(theirs)):
            mine, paper = ours.get(tokens), theirs.get(tokens)
            both = mine is not None and paper is not None and np.isfinite(mine)
            rows.append(
                {
                    "model": model.key,
                    "label": label,
                    "ntk_lambda": lam,
                    "context_tokens": tokens,
                    "published_model": name,
                    "published": paper,
                    "reproduced": None if mine is None else round(mine, 4),
                    "difference": round(mine - paper, 4) if both else None,
                    "relative_difference": round((mine - paper) / paper, 4) if both else None,
                    "note": note,
                }
            )
    return rows


def plot_target(
    target: Target,
    models: list[Model],
    inputs: list[str | Path],
    out_path: str | Path,
    comparison: str | Path | None = None,
) -> None:
    """The rule's entry: one curve per perplexity result file, the paper's curves overlaid;
    with ``comparison``, the curves' points beside the paper's there."""
    by_key = {m.key: m for m in models}
    labels = {m.key: m.label for m in models}  # the config's names, not those of the run
    results = [json.loads(Path(path).read_text()) for path in inputs]
    runs_of = Counter(r["model"] for r in results)
    curves = {}
    runs = []
    for result in results:
        label = labels[result["model"]]
        lam = float(result["provenance"]["rope"]["ntk_lambda"])
        if runs_of[result["model"]] > 1:  # one model at several λ: name the λ
            label = f"{label} (λ={lam:g})"
        curves[label] = result["curve"]
        runs.append((by_key[result["model"]], lam, label, result["curve"]))
    published_path = target.spec.get("published")
    published = load_published(published_path) if published_path else None
    longest = max(row["context_tokens"] for rows in curves.values() for row in rows)
    plot_figure1a(
        curves,
        out_path,
        published=published,
        t_train={m.label: m.t_train for m in models},
        x_max=None if longest > 4096 else longest,  # the paper's 0..16K axis; tight for demos
    )
    if comparison is not None:
        write_csv(comparison_rows(runs, published), COMPARISON_COLUMNS, comparison)
