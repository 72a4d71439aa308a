"""Tests for the perplexity figure (paper Figure 1a) and the Q/K t-SNE figure (Figure 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from longllada.figures.perplexity_fig1a import load_published, plot_figure1a
from longllada.figures.tsne_fig5 import COLUMNS, plot_figure5, qk_points

PUBLISHED = Path(__file__).resolve().parents[1] / "config" / "published" / "figure1a_perplexity.csv"


def _pdf_ok(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes().startswith(b"%PDF")


def _curve(x_max: int, start: float, slope: float) -> list[dict]:
    x = np.arange(64, x_max + 1, 64)
    return [{"context_tokens": int(n), "ppl": start + slope * n / 1000} for n in x]


def test_figure1a_with_published_overlay(tmp_path):
    published = load_published(PUBLISHED)
    assert set(published["model"]) >= {"LLaMA3-8B-Base", "LLaDA-8B-Base"}
    curves = {"LLaMA3-8B-Base": _curve(16000, 5.0, 3.0), "LLaDA-8B-Base": _curve(16320, 7.0, 0.0)}
    out = tmp_path / "fig1a.pdf"
    t_train = {"LLaMA3-8B-Base": 8192, "LLaDA-8B-Base": 4096}
    plot_figure1a(curves, out, published=published, t_train=t_train)
    _pdf_ok(out)


def test_figure1a_png_linear_and_no_overlay(tmp_path):
    out = tmp_path / "fig1a.png"
    plot_figure1a({"toy": _curve(1024, 20.0, -5.0)}, out, log_y=False)
    _pdf_ok(out.with_suffix(".pdf"))
    assert out.read_bytes().startswith(b"\x89PNG")


def test_figure1a_rejects_empty(tmp_path):
    with pytest.raises(ValueError):
        plot_figure1a({}, tmp_path / "x.pdf")
    with pytest.raises(ValueError, match="no rows"):
        plot_figure1a({"a": []}, tmp_path / "x.pdf")


def test_figure5_grid(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    points = {
        (m, c): rng.normal(size=(n, 2))
        for m in ("LLaDA-8B-Base", "LLaMA3-8B-Base")
        for c in COLUMNS
    }
    out = tmp_path / "fig5.pdf"
    plot_figure5(points, np.arange(n), out, t_train={"LLaDA-8B-Base": 100, "LLaMA3-8B-Base": 200})
    _pdf_ok(out)
    # Per-model positions, a missing panel, no T_train.
    del points[("LLaMA3-8B-Base", "K with RoPE")]
    points[("LLaMA3-8B-Base", "Q w/o RoPE")] = rng.normal(size=(250, 2))
    for c in ("K w/o RoPE", "Q with RoPE"):
        points[("LLaMA3-8B-Base", c)] = rng.normal(size=(250, 2))
    positions = {"LLaDA-8B-Base": np.arange(n), "LLaMA3-8B-Base": np.arange(250)}
    plot_figure5(points, positions, tmp_path / "fig5b.pdf")
    _pdf_ok(tmp_path / "fig5b.pdf")


def test_figure5_validates(tmp_path):
    with pytest.raises(ValueError, match="unknown columns"):
        plot_figure5({("m", "V"): np.zeros((3, 2))}, np.arange(3), tmp_path / "x.pdf")
    with pytest.raises(ValueError, match="expected \\(4, 2\\)"):
        plot_figure5({("m", COLUMNS[0]): np.zeros((3, 2))}, np.arange(4), tmp_path / "x.pdf")


def test_qk_points_tsne():
    pytest.importorskip("sklearn")
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    states = {"Q": rng.normal(size=(60, 4, 8)), "K": rng.normal(size=(60, 32))}
    # One thread: t-SNE's OpenMP loops crawl when oversubscribed on small CI machines.
    with threadpool_limits(limits=1):
        out = qk_points(states, perplexity=10, seed=0, max_iter=250)
        again = qk_points(states, perplexity=10, seed=0, max_iter=250)
    assert {k: v.shape for k, v in out.items()} == {"Q": (60, 2), "K": (60, 2)}
    np.testing.assert_allclose(out["Q"], again["Q"])
    with pytest.raises(ValueError, match="more points"):
        qk_points({"Q": rng.normal(size=(5, 3))}, perplexity=10)


def test_qk_points_without_sklearn(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # makes the import fail
    with pytest.raises(ImportError, match="scikit-learn"):
        qk_points({"Q": np.zeros((40, 2))})
