"""Figure 4: RoPE cos/sin against relative position, LLaDA vs LLaMA3.

Analytic (no model needed). RoPE rotates pair ``i`` of a head of dimension
``d`` by the angle ``m * theta_i`` at relative position ``m``, where
``theta_i = b ** (-2 i / d)``. A causal model (LLaMA3) only ever sees
``m in [0, T-1]`` during training, whereas a bidirectional diffusion model
(LLaDA) sees ``m in [1-T, T-1]``. Each panel greys out the part of the x-axis
outside the trained interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from longllada.config import Model, Target
from longllada.figures import style
from longllada.figures.style import plt

#: Frequency bands shown in the paper: pair index ``i`` per column.
DEFAULT_PAIRS: dict[str, int] = {
    "High frequency": 0,
    "Middle frequency": 24,
    "Low frequency": 56,
}
DEFAULT_MAX_POSITION = 16384
#: Points per curve when the curve is smooth at that resolution.
N_POINTS = 4001
UNTRAINED_COLOR = "0.5"
UNTRAINED_ALPHA = 0.25


@dataclass(frozen=True)
class RopeModel:
    """The RoPE setup of one model as far as Figure 4 needs it."""

    label: str
    rope_theta: float
    head_dim: int
    t_train: int
    bidirectional: bool


def trained_interval(model: RopeModel) -> tuple[int, int]:
    """Relative positions seen in training: ``[1-T, T-1]`` or ``[0, T-1]``."""
    t = model.t_train
    return (1 - t, t - 1) if model.bidirectional else (0, t - 1)


def rope_frequency(pair: int, rope_theta: float, head_dim: int) -> float:
    """``theta_i = b ** (-2 i / d)`` for pair ``i`` (``0 <= i < d/2``)."""
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"head_dim must be a positive even number, got {head_dim}")
    if not 0 <= pair < head_dim // 2:
        raise ValueError(f"pair must be in [0, {head_dim // 2}), got {pair}")
    return float(rope_theta ** (-2.0 * pair / head_dim))


def rope_angle(rel_pos: np.ndarray, pair: int, rope_theta: float, head_dim: int) -> np.ndarray:
    """Rotation angle ``rel_pos * theta_pair`` (radians) of one RoPE pair."""
    return np.asarray(rel_pos, dtype=np.float64) * rope_frequency(pair, rope_theta, head_dim)


def _positions(max_position: int, freq: float) -> np.ndarray:
    """x samples: every integer position when the curve oscillates faster than
    a 4001-point grid can follow (high frequency: looks like a filled band),
    else a 4001-point grid."""
    step = 2 * max_position / (N_POINTS - 1)
    period = 2 * np.pi / freq
    if period < 20 * step:
        return np.arange(-max_position, max_position + 1, dtype=np.float64)
    return np.linspace(-max_position, max_position, N_POINTS)


def _kilo(x: float, _pos: int) -> str:
    return "0" if x == 0 else f"{x / 1000:g}k"


def plot_figure4(
    models: list[RopeModel], pairs: dict[str, int], max_position: int, out_path: Path
) -> None:
    """Draw the models x frequency-bands grid of cos/sin curves to ``out_path``."""
    if not models or not pairs:
        raise ValueError("need at least one model and one frequency band")
    if max_position <= 0:
        raise ValueError(f"max_position must be positive, got {max_position}")
    style.apply_style()
    n_rows, n_cols = len(models), len(pairs)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(4.2 * n_cols, 2.6 * n_rows + 0.5),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for row, model in enumerate(models):
        lo, hi = trained_interval(model)
        for col, (band, pair) in enumerate(pairs.items()):
            ax = axes[row][col]
            freq = rope_frequency(pair, model.rope_theta, model.head_dim)
            x = _positions(max_position, freq)
            angle = rope_angle(x, pair, model.rope_theta, model.head_dim)
            dense = len(x) > N_POINTS
            # Dense (high-frequency) curves fill a band: thin, half transparent
            # so cos and sin both show, rasterized to keep the PDF small.
            line = {"lw": 0.3, "alpha": 0.5, "rasterized": True} if dense else {"lw": 1.2}
            ax.plot(x, np.cos(angle), color="C0", ls="-", **line)
            ax.plot(x, np.sin(angle), color="C3", ls="--", **line)
            for a, b in ((-max_position, lo), (hi, max_position)):
                if b > a:  # drawn above the curves so it shows over a filled band
                    ax.axvspan(a, b, color=UNTRAINED_COLOR, alpha=UNTRAINED_ALPHA, lw=0, zorder=2.5)
            for edge in sorted({lo, hi}):
                ax.axvline(edge, color="k", ls=":", lw=0.9)
            ax.axhline(0, color="k", lw=0.4, alpha=0.5)
            ax.set_xlim(-max_position, max_position)
            ax.set_ylim(-1.1, 1.1)
            ax.set_yticks([-1.0, -0.5, 0.0, 0.5, 1.0])
            ax.set_title(f"{model.label}: {band} (dim 2i={2 * pair})")
            ax.xaxis.set_major_formatter(FuncFormatter(_kilo))
            if row == n_rows - 1:
                ax.set_xlabel("Relative position")
            if col == 0:
                ax.set_ylabel("Value")
    handles = [
        Line2D([], [], color="C0", ls="-", label="cos"),
        Line2D([], [], color="C3", ls="--", label="sin"),
        Patch(facecolor=UNTRAINED_COLOR, alpha=UNTRAINED_ALPHA, label="untrained"),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    try:
        style.save(fig, out_path)
    finally:
        plt.close(fig)


def default_models() -> list[RopeModel]:
    """LLaDA-8B (bidirectional, T=4096) and LLaMA3-8B (causal, T=8192)."""
    return [
        RopeModel("LLaDA-8B", rope_theta=500000.0, head_dim=128, t_train=4096, bidirectional=True),
        RopeModel(
            "LLaMA3-8B", rope_theta=500000.0, head_dim=128, t_train=8192, bidirectional=False
        ),
    ]


def plot_target(target: Target, models: list[Model], out_path: str | Path) -> None:
    """The rule's entry: a `rope_coverage` target of the config, its models' RoPE settings."""
    rope_models = [
        RopeModel(m.label, m.rope_theta, m.head_dim, m.t_train, bidirectional=m.diffusion)
        for m in models
    ]
    pairs = target.spec.get("pairs", DEFAULT_PAIRS)
    max_position = target.spec.get("max_position", DEFAULT_MAX_POSITION)
    plot_figure4(rope_models, pairs, max_position, Path(out_path))
