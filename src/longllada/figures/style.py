"""Shared matplotlib style for every paper figure.

Importing this module selects the non-interactive ``Agg`` backend, so figures
can be rendered on headless cluster nodes. :func:`save` writes a PDF with
deterministic metadata (no creation date), so re-running a rule on the same
inputs gives byte-identical output.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: rcParams applied by :func:`apply_style` (and by :func:`save`'s callers via it).
RC_PARAMS: dict[str, object] = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "lines.linewidth": 1.2,
    "axes.grid": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 200,
    # Embed TrueType (Type 42) fonts: editable text, no Type 3 bitmaps.
    "pdf.fonttype": 42,
    "svg.hashsalt": "longllada",
}

#: PDF metadata: drop CreationDate so output is reproducible byte for byte.
PDF_METADATA: dict[str, str | None] = {"CreationDate": None, "ModDate": None}
#: PNG metadata: drop the Software tag (it names the matplotlib version).
PNG_METADATA: dict[str, str | None] = {"Software": None}


def apply_style() -> None:
    """Apply :data:`RC_PARAMS` to the global matplotlib configuration."""
    plt.rcParams.update(RC_PARAMS)


def save(fig: Figure, path: str | Path) -> list[Path]:
    """Write ``fig`` as a PDF and a PNG beside it (same stem) and return both paths.

    ``path`` names either (``*.pdf`` or ``*.png``). The PNG is what the reproduction report
    inlines (a browser shows it everywhere, a PDF not). Parent directories are created. The
    figure is not closed; callers own it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".pdf", ".png"}:
        raise ValueError(f"save() writes .pdf or .png files, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf_path, png_path = path.with_suffix(".pdf"), path.with_suffix(".png")
    fig.savefig(pdf_path, format="pdf", metadata=PDF_METADATA)
    fig.savefig(png_path, format="png", metadata=PNG_METADATA)
    return [pdf_path, png_path]
