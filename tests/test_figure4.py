"""Tests for the analytic RoPE figure (paper Figure 4) and the shared style."""

from __future__ import annotations

import numpy as np
import pytest

from longllada.figures import style
from longllada.figures.rope_fig4 import (
    DEFAULT_PAIRS,
    RopeModel,
    default_models,
    plot_figure4,
    rope_angle,
    trained_interval,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _models() -> dict[str, RopeModel]:
    return {m.label: m for m in default_models()}


def test_default_models():
    models = _models()
    assert set(models) == {"LLaDA-8B", "LLaMA3-8B"}
    llada, llama = models["LLaDA-8B"], models["LLaMA3-8B"]
    assert (llada.t_train, llada.bidirectional) == (4096, True)
    assert (llama.t_train, llama.bidirectional) == (8192, False)
    for m in (llada, llama):
        assert m.rope_theta == 500000.0
        assert m.head_dim == 128


def test_trained_interval():
    models = _models()
    assert trained_interval(models["LLaDA-8B"]) == (-4095, 4095)
    assert trained_interval(models["LLaMA3-8B"]) == (0, 8191)
    toy = RopeModel("toy", rope_theta=10000.0, head_dim=64, t_train=10, bidirectional=False)
    assert trained_interval(toy) == (0, 9)


def test_rope_angle_pair0_is_identity():
    pos = np.array([-8192, -3, 0, 1, 5, 4095])
    np.testing.assert_array_equal(rope_angle(pos, 0, 500000.0, 128), pos.astype(float))


def test_rope_angle_known_values():
    # theta_i = b ** (-2i/d); with b=1e4, d=4: pair 1 -> 1e-2.
    np.testing.assert_allclose(rope_angle(np.array([100.0]), 1, 10000.0, 4), [1.0])
    # middle pair of the default setup: 5e5 ** (-48/128)
    np.testing.assert_allclose(rope_angle(np.array([2.0]), 24, 5e5, 128), [2 * 5e5 ** (-0.375)])


def test_rope_angle_last_pair_tiny_and_odd():
    theta_last = 500000.0 ** (-126 / 128)
    ang = rope_angle(np.array([-8191.0, 8191.0]), 63, 500000.0, 128)
    np.testing.assert_allclose(ang, [-8191 * theta_last, 8191 * theta_last])
    assert 0 < ang[1] < 0.1
    # low frequency: a causal model only sees sin >= 0 in training, a
    # bidirectional one sees both signs.
    assert np.sin(ang[0]) < 0 < np.sin(ang[1])


@pytest.mark.parametrize("pair", [-1, 64])
def test_rope_angle_rejects_bad_pair(pair):
    with pytest.raises(ValueError):
        rope_angle(np.array([1.0]), pair, 500000.0, 128)


def test_plot_figure4_pdf(tmp_path):
    out = tmp_path / "sub" / "fig4.pdf"
    plot_figure4(default_models(), DEFAULT_PAIRS, 16384, out)
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 1000
    assert b"CreationDate" not in data


def test_plot_figure4_png(tmp_path):
    out = tmp_path / "fig4.png"
    plot_figure4(default_models(), {"High frequency": 0, "Low frequency": 56}, 2048, out)
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert out.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


def test_plot_figure4_pdf_deterministic(tmp_path):
    # A smaller x range keeps this fast; it still has a rasterized dense band.
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    plot_figure4(default_models(), DEFAULT_PAIRS, 4096, a)
    plot_figure4(default_models(), DEFAULT_PAIRS, 4096, b)
    assert a.read_bytes() == b.read_bytes()


def test_save_rejects_unknown_suffix(tmp_path):
    fig, _ = style.plt.subplots()
    try:
        with pytest.raises(ValueError):
            style.save(fig, tmp_path / "fig.svg")
    finally:
        style.plt.close(fig)
