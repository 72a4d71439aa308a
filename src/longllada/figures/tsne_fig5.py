"""Figure 5: t-SNE of final-layer query and key states, with and without RoPE.

One GovReport sample longer than the training length goes through LLaDA and LLaMA3 once each;
the final layer's Q and K (before and after the rotary embedding) of every token are embedded
in 2-D by t-SNE and coloured by token position. The official repository has no code for this
figure; the paper shows rows = models and columns = Q/K without/with RoPE.

:func:`qk_points` runs t-SNE (scikit-learn, imported only there), :func:`plot_figure5` draws
already-embedded points, so the plot needs no scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib import cm
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from longllada.config import Model, Target
from longllada.figures import style
from longllada.figures.style import plt

COLUMNS = ("Q w/o RoPE", "K w/o RoPE", "Q with RoPE", "K with RoPE")
STATE_KEYS = ("q_pre", "k_pre", "q_post", "k_post")  # arrays of a qk_states .npz, in COLUMNS order
CMAP = "viridis"
MARKER_TRAINED = "o"
MARKER_BEYOND = "^"  # positions >= T_train


def qk_points(
    states: dict[str, np.ndarray],
    perplexity: float = 30,
    seed: int = 2025,
    max_iter: int = 1000,
) -> dict[str, np.ndarray]:
    """2-D t-SNE embedding of each state array (``[n_tokens, ...]``, flattened per token).

    ``max_iter``: optimisation steps (scikit-learn's default 1000; at least 250).

    Each array is embedded on its own (PCA initialisation, fixed ``seed``), so every panel
    shows its own geometry; t-SNE coordinates are not comparable across panels anyway.
    """
    try:
        from sklearn.manifold import TSNE
    except ImportError as e:
        raise ImportError(
            "qk_points needs scikit-learn (sklearn.manifold.TSNE); install scikit-learn "
            "to compute the Figure 5 embeddings"
        ) from e
    out = {}
    for name, x in states.items():
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if len(x) <= perplexity:
            raise ValueError(
                f"{name}: t-SNE needs more points ({len(x)}) than its perplexity ({perplexity})"
            )
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            random_state=seed,
            max_iter=max_iter,
        )
        out[name] = tsne.fit_transform(x)
    return out


def _layout(points: dict[tuple[str, str], np.ndarray]) -> tuple[list[str], list[str]]:
    models = list(dict.fromkeys(model for model, _ in points))
    unknown = {col for _, col in points} - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}; expected some of {COLUMNS}")
    columns = [c for c in COLUMNS if any(col == c for _, col in points)]
    return models, columns


def plot_figure5(
    points: dict[tuple[str, str], np.ndarray],
    positions: np.ndarray | dict[str, np.ndarray],
    out_path: str | Path,
    t_train: dict[str, int] | None = None,
) -> None:
    """Draw the models x {Q, K} x {w/o, with RoPE} grid of t-SNE scatters to ``out_path``.

    ``points``: ``(model_label, column) -> [n, 2]``, columns from :data:`COLUMNS`.
    ``positions``: token position of each point, one array for all models or one per model
    label (the two tokenizers cut the same text into different numbers of tokens).
    ``t_train``: label -> training length; that model's points at positions >= T_train are
    drawn as triangles, and the colorbar gets a dashed line at T_train.
    """
    if not points:
        raise ValueError("need at least one panel")
    models, columns = _layout(points)
    t_train = t_train or {}

    def pos_of(model: str) -> np.ndarray:
        p = positions[model] if isinstance(positions, dict) else positions
        return np.asarray(p)

    for (model, col), xy in points.items():
        if np.shape(xy) != (len(pos_of(model)), 2):
            raise ValueError(
                f"{model} / {col}: points have shape {np.shape(xy)}, "
                f"expected ({len(pos_of(model))}, 2) to match the positions"
            )
    vmax = max(float(pos_of(m).max()) for m in models)
    norm = Normalize(vmin=0, vmax=max(vmax, 1.0))
    style.apply_style()
    fig, axes = plt.subplots(
        len(models),
        len(columns),
        figsize=(2.4 * len(columns) + 1.0, 2.4 * len(models) + 0.5),
        squeeze=False,
        layout="constrained",
    )
    size = 4.0 if max(len(pos_of(m)) for m in models) > 2000 else 10.0
    for r, model in enumerate(models):
        pos = pos_of(model)
        beyond = pos >= t_train[model] if model in t_train else np.zeros(len(pos), dtype=bool)
        for c, col in enumerate(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col)
            if c == 0:
                extra = f"\n($T_{{train}}$={t_train[model]})" if model in t_train else ""
                ax.set_ylabel(model + extra)
            xy = points.get((model, col))
            if xy is None:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
                continue
            xy = np.asarray(xy)
            for sel, marker in ((~beyond, MARKER_TRAINED), (beyond, MARKER_BEYOND)):
                if sel.any():
                    ax.scatter(
                        xy[sel, 0],
                        xy[sel, 1],
                        c=pos[sel],
                        cmap=CMAP,
                        norm=norm,
                        s=size,
                        marker=marker,
                        linewidths=0,
                        rasterized=True,  # thousands of points: keep the PDF small
                    )
    cbar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=CMAP), ax=axes, label="Position")
    to_left = blended_transform_factory(cbar.ax.transAxes, cbar.ax.transData)
    for model in models:
        # A T_train past the last position (a sample shorter than T_train) has no place there.
        if model in t_train and t_train[model] <= norm.vmax:
            cbar.ax.axhline(t_train[model], color="k", ls="--", lw=1.0)
            cbar.ax.text(
                -0.15, t_train[model], model, transform=to_left, ha="right", va="center", fontsize=6
            )
    if any(model in t_train for model in models):
        handles = [
            Line2D(
                [], [], marker=MARKER_TRAINED, ls="", color="0.3", label="position < $T_{train}$"
            ),
            Line2D(
                [], [], marker=MARKER_BEYOND, ls="", color="0.3", label="position ≥ $T_{train}$"
            ),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    try:
        style.save(fig, out_path)
    finally:
        plt.close(fig)


def plot_target(
    target: Target,
    models: list[Model],
    inputs: list[str | Path],
    out_path: str | Path,
    seed: int = 2025,
) -> None:
    """The rule's entry: embed each model's four state arrays, then draw the grid."""
    del target  # the runs are the inputs; nothing else in the target changes the figure
    points: dict[tuple[str, str], np.ndarray] = {}
    positions: dict[str, np.ndarray] = {}
    labels = {m.key: m.label for m in models}  # the config's names, not those of the run
    for path in inputs:
        with np.load(path) as data:
            label = labels[json.loads(str(data["provenance"]))["model"]["key"]]
            states = {k: data[k].astype(np.float32) for k in STATE_KEYS}
            positions[label] = data["positions"]
        embedded = qk_points(states, seed=seed)
        for key, column in zip(STATE_KEYS, COLUMNS, strict=True):
            points[(label, column)] = embedded[key]
    plot_figure5(points, positions, out_path, t_train={m.label: m.t_train for m in models})
