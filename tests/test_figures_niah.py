"""Tests for the NeedleBench NIAH figures (paper Figures 1b, 2, 3, 6-11) and their CSVs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.text import Text

from longllada.config import Run, Target
from longllada.figures import niah_figs as nf

PUBLISHED = Path(__file__).resolve().parents[1] / "config" / "published"
OVERALL_CSV = PUBLISHED / "niah_overall_scores.csv"
CELLS_CSV = PUBLISHED / "figure2_niah_cells.csv"
LABELS = {
    "llada_8b_base": "LLaDA-8B-Base",
    "llama3_8b_base": "LLaMA3-8B-Base",
    "llada_8b_instruct": "LLaDA-8B-Instruct",
    "llama3_8b_instruct": "LLaMA3-8B-Instruct",
    "llada_tiny_base": "LLaDA-tiny-Base",
    "llama_tiny_base": "LLaMA-tiny-Base",
}


def _llada(model: str = "llada_8b_base", steps: int = 32, lam: float = 1.0) -> Run:
    return Run("niah", model, "llada", lam, (("block_length", 32), ("steps", steps)))


def _llama(model: str = "llama3_8b_base") -> Run:
    return Run("niah", model, "ar", 1.0)


def _write_scores(
    path: Path,
    run: Run,
    cells: dict[tuple[int, int], float],
    *,
    ads_shift: float = 0.0,
    overall: float | None = None,
    sample_limit: int | None = None,
    n_samples: int | None = None,
    n_full: int | None = None,
    drop: str | None = None,
) -> Path:
    """A scores.json as the scoring stage writes it. ``ads_shift``/``overall`` make the given
    aggregates differ from the cell means, to show they are drawn as given."""
    per: dict[int, list[float]] = {}
    for (length, _d), score in cells.items():
        per.setdefault(length, []).append(score)
    n_cells = 3 * len(cells)
    data = {
        "benchmark": "niah",
        "model": run.model,
        "setting": run.setting,
        "family": run.family,
        "ntk_lambda": run.ntk_lambda,
        "sampler": dict(run.sampler),
        "sample_limit": sample_limit,
        "n_samples": n_cells if n_samples is None else n_samples,
        "n_full": n_cells if n_full is None else n_full,
        "cells": [{"length": n, "depth": d, "score": s, "n": 3} for (n, d), s in cells.items()],
        "by_length": [{"length": n, "score": sum(v) / len(v) + ads_shift} for n, v in per.items()],
        "overall": sum(cells.values()) / len(cells) if overall is None else overall,
        "samples": [],
        "provenance": {},
    }
    if drop:
        del data[drop]
    path.write_text(json.dumps(data))
    return path


def _grid(lengths: list[int], depths: list[int], base: float) -> dict[tuple[int, int], float]:
    # Distinct, non-round scores: a swapped cell or panel would show.
    return {
        (n, d): round(min(100.0, base + 7.13 * i + 1.7 * j), 4)
        for i, n in enumerate(lengths)
        for j, d in enumerate(depths)
    }


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _pdf_ok(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes().startswith(b"%PDF")


@pytest.fixture
def captured(monkeypatch):
    """The texts of every figure saved through style.save (the figure is closed afterwards)."""
    texts: list[list[str]] = []
    original = nf.style.save

    def save(fig, path):
        texts.append([t.get_text() for t in fig.findobj(Text) if t.get_text()])
        return original(fig, path)

    monkeypatch.setattr(nf.style, "save", save)
    return texts


# --- helpers ----------------------------------------------------------------------------------


def test_format_length():
    assert [nf.format_length(n) for n in (2000, 4000, 32000, 128, 1024, 1500)] == [
        "2K",
        "4K",
        "32K",
        "128",
        "1024",
        "1500",
    ]


def test_panel_descriptor_and_figure_number():
    assert nf.panel_descriptor("LLaDA-8B-Base", 1.0, 32) == "LLaDA-8B-Base, steps 32, λ=1"
    assert nf.panel_descriptor("LLaMA3-8B-Base", 1.0, None) == "LLaMA3-8B-Base, λ=1"
    assert nf.panel_descriptor("X", 2.5, 4) == "X, steps 4, λ=2.5"
    assert nf.panel_descriptor(None, 14.0, 8) == "steps 8, λ=14"
    assert nf.figure_number("figure3_niah_steps_llada_8b_base") == "3"
    assert nf.figure_number("figure10_niah_steps_llada_8b_instruct") == "10"
    assert nf.figure_number("table1_longbench") is None


def test_figure2_panels_match_published_overall_scores():
    # The constant that orders the cells file's panels is the paper's 2a-2d.
    table = pd.read_csv(OVERALL_CSV, dtype={"figure": str})
    for fig, model, steps, lam in nf.FIGURE2_PANELS:
        row = table[table["figure"] == fig].iloc[0]
        assert row["model"] == model
        assert (pd.isna(row["steps"]) and steps is None) or row["steps"] == steps
        assert row["ntk_lambda"] == lam


def test_cells_file_panel_order_and_published_overall():
    kind, table = nf.load_published(CELLS_CSV)
    assert kind == "cells"
    # The file lists LLaMA first; panels follow the paper (a LLaDA-8B-Base, b LLaMA3-8B-Base ...).
    assert list(dict.fromkeys(table["model"]))[0] == "LLaMA3-8B-Base"
    assert nf.cells_panel_models(table["model"]) == [m for _f, m, _s, _l in nf.FIGURE2_PANELS]
    assert nf.cells_panel_models(["z", "LLaMA3-8B-Base", "y", "LLaDA-8B-Base"]) == [
        "LLaDA-8B-Base",
        "LLaMA3-8B-Base",
        "z",
        "y",
    ]
    # The cell means reproduce the published Overall Scores 2a-2d.
    runs = [_llada(), _llama(), _llada("llada_8b_instruct"), _llama("llama3_8b_instruct")]
    panels = [
        nf.Panel(
            letter="abcd"[k],
            path=Path("x"),
            model=r.model,
            label=LABELS[r.model],
            setting=r.setting,
            ntk_lambda=1.0,
            steps=None,
            cells={},
            by_length={},
            overall=0.0,
            sample_limit=None,
            n_samples=0,
            n_full=0,
        )
        for k, r in enumerate(runs)
    ]
    published = nf.published_panels(kind, table, "2", panels)
    overall = pd.read_csv(OVERALL_CSV, dtype={"figure": str}).set_index("figure")["overall"]
    for pub, fig, expected in zip(published, "abcd", [54.25, 51.71, 52.41, 46.60], strict=True):
        assert pub.figure == f"2{fig}"
        assert len(pub.cells) == 66
        assert pub.overall == pytest.approx(expected, abs=0.005)
        assert pub.overall == pytest.approx(overall[f"2{fig}"], abs=0.005)


def test_banner_text():
    def panel(limit, done, full):
        return nf.Panel("a", Path("x"), "m", "M", "s", 1.0, None, {}, {}, 0.0, limit, done, full)

    assert nf.banner_text([panel(None, 660, 660)]) is None
    assert (
        nf.banner_text([panel(5, 30, 660), panel(5, 30, 660)])
        == "sample limit 5 per job: 60 of 1320 samples, not the paper's full grid"
    )
    assert nf.banner_text([panel(None, 12, 660), panel(None, 660, 660)]) == (
        "demo/budget run: 672 of 1320 samples, not the paper's full grid"
    )


# --- heatmaps ---------------------------------------------------------------------------------


def _figure3(tmp_path: Path, **kwargs) -> tuple[Target, list[Path], list[dict]]:
    lengths, depths = [128, 256, 512], [0, 50, 100]
    runs = [_llada(steps=s) for s in (1, 4, 8)]
    grids = [_grid(lengths, depths, base) for base in (10.5, 40.25, 70.0)]
    inputs = [
        _write_scores(tmp_path / f"s{k}.json", run, grid, ads_shift=0.5, overall=30.0 + k, **kwargs)
        for k, (run, grid) in enumerate(zip(runs, grids, strict=True))
    ]
    target = Target(
        "figure3_niah_steps_llada_8b_base", "niah_heatmaps", {"published": str(OVERALL_CSV)}, runs
    )
    return target, inputs, grids


def test_heatmaps_csv_comparison_and_texts(tmp_path, captured):
    target, inputs, grids = _figure3(tmp_path)
    out = tmp_path / "out"
    nf.plot_target(target, LABELS, inputs, out / "f.pdf", out / "f.csv", out / "f_cmp.csv")
    _pdf_ok(out / "f.pdf")

    rows = _read(out / "f.csv")
    assert list(rows[0]) == nf.FIGURE_COLUMNS
    for k, grid in enumerate(grids):
        mine = [r for r in rows if r["panel"] == "abc"[k]]
        assert {r["kind"] for r in mine} == set(nf.ROW_KINDS)
        assert all(r["setting"] == f"ntk1_s{(1, 4, 8)[k]}_b32" for r in mine)
        assert all(r["steps"] == str((1, 4, 8)[k]) and r["ntk_lambda"] == "1" for r in mine)
        cells = {
            (int(r["length"]), int(r["depth"])): float(r["score"])
            for r in mine
            if r["kind"] == "cell"
        }
        assert cells == grid
        assert all(r["n"] == "3" for r in mine if r["kind"] == "cell")
        ads = [r for r in mine if r["kind"] == "average_depth_score"]
        assert [r["depth"] for r in ads] == ["", "", ""]
        for r in ads:  # as given: the file's value (mean + 0.5), not recomputed
            values = [s for (n, _d), s in grid.items() if n == int(r["length"])]
            assert float(r["score"]) == pytest.approx(sum(values) / len(values) + 0.5)
        (overall,) = [r for r in mine if r["kind"] == "overall"]
        assert (overall["length"], overall["depth"], float(overall["score"])) == ("", "", 30.0 + k)

    cmp = _read(out / "f_cmp.csv")
    assert list(cmp[0]) == nf.COMPARISON_COLUMNS
    overall_rows = [r for r in cmp if r["kind"] == "overall"]
    assert [
        (r["panel"], r["published_figure"], r["published_steps"], float(r["published"]))
        for r in overall_rows
    ] == [("a", "3a", "1", 45.59), ("b", "3b", "4", 47.15), ("c", "3c", "8", 52.75)]
    for k, r in enumerate(overall_rows):
        assert r["published_model"] == "LLaDA-8B-Base"
        assert float(r["reproduced"]) == 30.0 + k
        assert float(r["difference"]) == pytest.approx(30.0 + k - float(r["published"]))
    cell_rows = [r for r in cmp if r["kind"] == "cell"]
    assert len(cell_rows) == 27 and all(r["published"] == r["difference"] == "" for r in cell_rows)

    (texts,) = captured
    assert "Overall Score: 30.00" in texts and "Overall Score: 32.00" in texts
    assert "(a) LLaDA-8B-Base, steps 1, λ=1" in texts
    assert "(c) LLaDA-8B-Base, steps 8, λ=1" in texts
    assert "Token Limit" in texts and "Depth Percent" in texts and "2K" not in texts
    assert "128" in texts and "512" in texts
    assert not any("not the paper's full grid" in t for t in texts)


def test_heatmaps_sample_limit_banner(tmp_path, captured):
    target, inputs, _ = _figure3(tmp_path, sample_limit=2, n_samples=18, n_full=27)
    nf.plot_target(target, LABELS, inputs, tmp_path / "f.pdf", tmp_path / "f.csv", tmp_path / "c")
    banner = "sample limit 2 per job: 54 of 81 samples, not the paper's full grid"
    assert banner in captured[0]


def test_more_panels_than_published_and_wrapping(tmp_path):
    lengths, depths = [2000, 4000], [0, 100]
    runs = [_llada(steps=s) for s in (1, 2, 4, 8, 16)]
    inputs = [
        _write_scores(tmp_path / f"s{k}.json", r, _grid(lengths, depths, 5.0 * k))
        for k, r in enumerate(runs)
    ]
    target = Target("figure3_x", "niah_heatmaps", {"published": str(OVERALL_CSV)}, runs)
    nf.plot_target(target, LABELS, inputs, tmp_path / "f.pdf", tmp_path / "f.csv", tmp_path / "c")
    _pdf_ok(tmp_path / "f.pdf")
    overall = [r for r in _read(tmp_path / "c") if r["kind"] == "overall"]
    assert [r["published_figure"] for r in overall] == ["3a", "3b", "3c", "3d", ""]
    assert overall[4]["published"] == overall[4]["difference"] == ""


def test_figure2_cells_outer_join(tmp_path):
    runs = [_llada(), _llama()]
    # Ours: lengths 1000 (not in the paper) and 2000 (in it), depths 0 and 10.
    grids = [_grid([1000, 2000], [0, 10], 20.0), _grid([1000, 2000], [0, 10], 60.0)]
    inputs = [
        _write_scores(tmp_path / f"s{k}.json", r, g)
        for k, (r, g) in enumerate(zip(runs, grids, strict=True))
    ]
    target = Target(
        "figure2_niah_direct_extrapolation", "niah_heatmaps", {"published": str(CELLS_CSV)}, runs
    )
    nf.plot_target(target, LABELS, inputs, tmp_path / "f.pdf", tmp_path / "f.csv", tmp_path / "c")
    cmp = _read(tmp_path / "c")
    paper = pd.read_csv(CELLS_CSV)
    for k, model in enumerate(["LLaDA-8B-Base", "LLaMA3-8B-Base"]):
        mine = [r for r in cmp if r["panel"] == "ab"[k]]
        assert {r["published_model"] for r in mine} == {model}
        assert {r["published_figure"] for r in mine} == {f"2{'ab'[k]}"}
        ours = paper[paper["model"] == model]
        cells = {(r["length"], r["depth"]): r for r in mine if r["kind"] == "cell"}
        # 66 published cells + our 2 cells at length 1000; (2000, 0) and (2000, 10) on both sides.
        assert len(cells) == 66 + 2
        only_ours = cells[("1000", "0")]
        assert (
            only_ours["published"] == "" and float(only_ours["reproduced"]) == grids[k][(1000, 0)]
        )
        only_paper = cells[("32000", "50")]
        assert only_paper["reproduced"] == ""
        assert (
            float(only_paper["published"])
            == ours.query("length == 32000 and depth == 50")["score"].item()
        )
        both = cells[("2000", "10")]
        expected = ours.query("length == 2000 and depth == 10")["score"].item()
        assert float(both["published"]) == expected
        assert float(both["difference"]) == pytest.approx(grids[k][(2000, 10)] - expected)
        ads = {r["length"]: r for r in mine if r["kind"] == "average_depth_score"}
        assert set(ads) == {"1000", "2000", "4000", "8000", "16000", "24000", "32000"}
        mean_8k = ours[ours["length"] == 8000]["score"].mean()
        assert float(ads["8000"]["published"]) == pytest.approx(mean_8k)
        assert ads["8000"]["reproduced"] == ""
        (overall,) = [r for r in mine if r["kind"] == "overall"]
        assert float(overall["published"]) == pytest.approx([54.25, 51.71][k], abs=0.005)


def test_cells_file_positional_for_other_labels(tmp_path):
    # A demo's tiny models are not in the cells file: panels take the paper's panel order.
    runs = [_llada("llada_tiny_base"), _llama("llama_tiny_base")]
    inputs = [
        _write_scores(tmp_path / f"s{k}.json", r, _grid([128], [0], 50.0))
        for k, r in enumerate(runs)
    ]
    target = Target("figure2_x", "niah_heatmaps", {"published": str(CELLS_CSV)}, runs)
    nf.plot_target(target, LABELS, inputs, tmp_path / "f.pdf", tmp_path / "f.csv", tmp_path / "c")
    overall = [r for r in _read(tmp_path / "c") if r["kind"] == "overall"]
    assert [r["published_model"] for r in overall] == ["LLaDA-8B-Base", "LLaMA3-8B-Base"]


def test_no_published_and_unknown_figure_ids(tmp_path):
    runs = [_llada(), _llama()]
    inputs = [
        _write_scores(tmp_path / f"s{k}.json", r, _grid([128, 256], [0], 10.0))
        for k, r in enumerate(runs)
    ]
    target = Target("figure9_niah_x", "niah_heatmaps", {}, runs)
    nf.plot_target(target, LABELS, inputs, tmp_path / "f.pdf", tmp_path / "f.csv", tmp_path / "c")
    cmp = _read(tmp_path / "c")
    assert cmp and all(r["published"] == r["published_figure"] == "" for r in cmp)
    assert [r["steps"] for r in _read(tmp_path / "f.csv") if r["kind"] == "overall"] == ["32", ""]

    odd = tmp_path / "odd.csv"
    odd.write_text("figure,model,steps,ntk_lambda,overall\n99z,M,1,1,10\n9a,Dream,32,1,60.81\n")
    target.spec["published"] = str(odd)
    nf.plot_target(target, LABELS, inputs, tmp_path / "f.pdf", tmp_path / "f.csv", tmp_path / "c")
    overall = [r for r in _read(tmp_path / "c") if r["kind"] == "overall"]
    assert [r["published_figure"] for r in overall] == ["9a", ""]


# --- by length (Figure 1b) ----------------------------------------------------------------------


def test_by_length_figure(tmp_path, captured):
    runs = [_llada(), _llama(), _llada(steps=8)]
    grids = [_grid([2000, 4000, 8000], [0, 50], b) for b in (30.0, 50.0, 70.0)]
    inputs = [
        _write_scores(tmp_path / f"s{k}.json", r, g, ads_shift=0.25, sample_limit=1)
        for k, (r, g) in enumerate(zip(runs, grids, strict=True))
    ]
    target = Target(
        "figure1b_niah_by_length", "niah_by_length", {"published": str(CELLS_CSV)}, runs
    )
    out = tmp_path / "o"
    nf.plot_target(target, LABELS, inputs, out / "f.pdf", out / "f.csv", out / "c.csv")
    _pdf_ok(out / "f.pdf")
    rows = _read(out / "f.csv")
    assert {r["kind"] for r in rows} == {"average_depth_score", "overall"}
    ads = [r for r in rows if r["panel"] == "b" and r["kind"] == "average_depth_score"]
    assert [float(r["score"]) for r in ads] == [
        pytest.approx(sum(s for (n, _d), s in grids[1].items() if n == length) / 2 + 0.25)
        for length in (2000, 4000, 8000)
    ]
    cmp = _read(out / "c.csv")
    assert {r["kind"] for r in cmp} == {"average_depth_score", "overall"}
    overall = [r for r in cmp if r["kind"] == "overall"]
    assert [r["published_model"] for r in overall] == [
        "LLaDA-8B-Base",
        "LLaMA3-8B-Base",
        "LLaDA-8B-Base",
    ]
    assert float(overall[1]["published"]) == pytest.approx(51.71, abs=0.005)
    (texts,) = captured
    # One model twice: its lines name their settings; one legend entry for the paper.
    assert "LLaDA-8B-Base (steps 32, λ=1)" in texts and "LLaDA-8B-Base (steps 8, λ=1)" in texts
    assert "LLaMA3-8B-Base" in texts and texts.count("paper") == 1
    assert any(t.startswith("sample limit 1 per job") for t in texts)


def test_line_labels():
    def panel(model, steps):
        return nf.Panel(
            "a", Path("x"), model, LABELS[model], "s", 1.0, steps, {}, {}, 0, None, 1, 1
        )

    assert nf.line_labels([panel("llada_8b_base", 32), panel("llama3_8b_base", None)]) == [
        "LLaDA-8B-Base",
        "LLaMA3-8B-Base",
    ]
    assert nf.line_labels([panel("llada_8b_base", 32), panel("llada_8b_base", 4)]) == [
        "LLaDA-8B-Base (steps 32, λ=1)",
        "LLaDA-8B-Base (steps 4, λ=1)",
    ]


# --- determinism and bad input ------------------------------------------------------------------


@pytest.mark.parametrize("kind", nf.KINDS)
def test_rerun_is_byte_identical(tmp_path, kind):
    runs = [_llada(), _llama()]
    inputs = [
        _write_scores(tmp_path / f"s{k}.json", r, _grid([2000, 4000], [0, 50, 100], 20.0 * k))
        for k, r in enumerate(runs)
    ]
    target = Target("figure2_x", kind, {"published": str(CELLS_CSV)}, runs)
    outputs = []
    for attempt in ("one", "two"):
        out = tmp_path / attempt
        nf.plot_target(target, LABELS, inputs, out / "f.pdf", out / "f.csv", out / "c.csv")
        outputs.append([(out / name).read_bytes() for name in ("f.pdf", "f.csv", "c.csv")])
    assert outputs[0] == outputs[1]


def test_bad_inputs_name_the_file(tmp_path):
    runs = [_llada(), _llama()]
    good = [
        _write_scores(tmp_path / f"s{k}.json", r, _grid([128], [0], 10.0))
        for k, r in enumerate(runs)
    ]
    target = Target("figure2_x", "niah_heatmaps", {}, runs)
    outs = (tmp_path / "f.pdf", tmp_path / "f.csv", tmp_path / "c.csv")

    with pytest.raises(ValueError, match="s0.json.*for 2 run"):
        nf.plot_target(target, LABELS, good[:1], *outs)
    lacking = _write_scores(tmp_path / "lacking.json", runs[1], {(128, 0): 1.0}, drop="by_length")
    with pytest.raises(ValueError, match=r"lacking\.json.*by_length"):
        nf.plot_target(target, LABELS, [good[0], lacking], *outs)
    with pytest.raises(ValueError, match=r"s1\.json.*llama3_8b_base/ntk1.*llada_8b_base"):
        nf.plot_target(target, LABELS, [good[1], good[0]], *outs)  # misordered
    bad_csv = tmp_path / "bad_published.csv"
    bad_csv.write_text("figure,model,value\n2a,M,1\n")
    target.spec["published"] = str(bad_csv)
    with pytest.raises(ValueError, match=r"bad_published\.csv.*unknown published"):
        nf.plot_target(target, LABELS, good, *outs)
    assert not outs[0].exists()
