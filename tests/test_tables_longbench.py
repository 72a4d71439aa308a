"""Tests for the LongBench tables (paper Tables 1 and 3)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from longllada.benchmarks.longbench import CATEGORIES, SUBSETS
from longllada.config import Run, Study, Target
from longllada.tables import common
from longllada.tables import longbench_table as lt

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "config" / "published"
TABLE1 = PUBLISHED / "table1_longbench.csv"
TABLE3 = PUBLISHED / "table3_longbench_dream.csv"
CONTEXTS = ["4k", "8k"]
BUDGETS = {"1k": 768, "4k": 3500, "8k": 7500}
METRICS = [*CATEGORIES, "Avg"]
SAMPLER = {"llada": {"steps": "gen_length", "block_length": 64}, "dream": {"steps": "gen_length"}}
TINY_LABELS = {
    "llada_tiny_base": "LLaDA-tiny-Base",
    "llama_tiny_base": "LLaMA-tiny-Base",
    "dream_tiny_base": "Dream-tiny-Base",
    "dream_tiny_instruct": "Dream-tiny-Instruct",
}


@pytest.fixture(scope="module")
def paper() -> Study:
    return Study(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))


@pytest.fixture(scope="module")
def labels(paper: Study) -> dict[str, str]:
    return {**{k: m.label for k, m in paper.models.items()}, **TINY_LABELS}


def _run(model: str, family: str, lam: float = 1.0) -> Run:
    return Run("longbench", model, family, lam, tuple(sorted(SAMPLER.get(family, {}).items())))


def _target(runs: list[Run], name: str = "table1_longbench", **spec) -> Target:
    return Target(name=name, kind="longbench_table", spec=spec, runs=runs)


def _scores(base: float, subsets=tuple(SUBSETS)) -> dict[str, float]:
    # Distinct, uneven scores so a mean over the wrong subsets shows.
    return {s: round(base + (7.3 * i) % 41, 3) for i, s in enumerate(subsets)}


def _full(base: float, contexts=CONTEXTS) -> dict[str, dict[str, float]]:
    return {c: _scores(base - 7 * k) for k, c in enumerate(contexts)}


def _write(
    path: Path,
    run: Run,
    per_context: dict[str, dict[str, float]],
    *,
    sample_limit: int | None = None,
    n_samples: int = 4750,
    n_full: int = 4750,
    edit=None,
) -> Path:
    """A scores.json as the LongBench scoring job writes it (``edit`` may spoil it)."""
    subsets = [
        {
            "context": c,
            "budget": BUDGETS[c],
            "subset": s,
            "category": SUBSETS[s].category,
            "score": v,
            "n": SUBSETS[s].n_samples,
            "truncated": 7,
        }
        for c, scores in per_context.items()
        for s, v in scores.items()
    ]
    data = {
        "benchmark": "longbench",
        "model": run.model,
        "setting": run.setting,
        "family": run.family,
        "ntk_lambda": run.ntk_lambda,
        "sampler": dict(run.sampler),
        "sample_limit": sample_limit,
        "n_samples": n_samples,
        "n_full": n_full,
        "subsets": subsets,
        "samples": [],
        "provenance": {},
    }
    if edit is not None:
        edit(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _outputs(tmp: Path, name: str) -> dict[str, Path]:
    return {
        "csv": tmp / f"{name}.csv",
        "md": tmp / f"{name}.md",
        "tex": tmp / f"{name}.tex",
        "comparison": tmp / f"{name}.comparison.csv",
        "subsets_csv": tmp / f"{name}.subsets.csv",
    }


def _build(tmp: Path, target: Target, labels, inputs, published=(TABLE1,), contexts=CONTEXTS):
    out = _outputs(tmp / "out", target.name)
    lt.write_target(target, labels, inputs, published, contexts, **out)
    return out


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _md_rows(path: Path) -> list[list[str]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]


def _tex_body(path: Path) -> list[list[str]]:
    body = path.read_text().split("\\midrule\n", 1)[1].split("\\bottomrule")[0]
    return [
        [c.strip() for c in ln.removesuffix(" \\\\").split(" & ")]
        for ln in body.splitlines()
        if ln and ln != "\\midrule"
    ]


def _paper_files(tmp: Path, target: Target) -> list[Path]:
    """Full scores for every run of a paper target, a different level per run."""
    return [
        _write(tmp / "in" / f"{i}" / "scores.json", run, _full(20.0 + 3 * i))
        for i, run in enumerate(target.runs)
    ]


# --- numbers ----------------------------------------------------------------------------------


def test_categories_are_subset_means_and_avg_the_21_subset_mean():
    # Code's 2 subsets high: the category mean weighs them 1/6, the 21-subset mean 2/21.
    scores = {**_scores(10.0), "lcc": 95.0, "repobench-p": 91.0}
    m = lt.context_metrics(scores)
    assert list(m) == METRICS
    for category in CATEGORIES:
        members = [scores[s] for s, f in SUBSETS.items() if f.category == category]
        assert m[category] == pytest.approx(sum(members) / len(members))
    assert m["Avg"] == pytest.approx(sum(scores.values()) / 21)
    category_mean = sum(m[c] for c in CATEGORIES) / 6
    assert abs(m["Avg"] - category_mean) > 1.0  # not the mean of the category columns


def test_missing_subset_blanks_its_category_and_avg():
    scores = _scores(10.0)
    del scores["lsht"]
    m = lt.context_metrics(scores)
    assert m["ICL"] is None and m["Avg"] is None
    assert all(m[c] is not None for c in CATEGORIES if c != "ICL")


def test_published_avg_is_not_the_category_mean():
    # What NOTE_AVG says about the paper's numbers holds for every published row.
    paper = common.load_published([TABLE3, TABLE1], METRICS)
    for key, row in paper.values.items():
        gap = sum(row[c] for c in CATEGORIES) / 6 - row["Avg"]
        assert 1.4 <= gap < 2.95, key
    assert "not derivable from the published categories" in lt.NOTE_AVG


# --- the table files --------------------------------------------------------------------------


def test_rows_in_config_order_and_wide_csv(tmp_path, paper, labels):
    target = paper.targets["table1_longbench"]
    files = _paper_files(tmp_path, target)
    out = _build(tmp_path, target, labels, list(reversed(files)))  # matched by content
    rows = _read(out["csv"])
    assert list(rows[0]) == [
        "model",
        "label",
        "setting",
        "ntk_lambda",
        *(f"{c}_{m}" for c in CONTEXTS for m in METRICS),
        "n_samples",
        "sample_limit",
    ]
    assert [(r["label"], r["ntk_lambda"], r["setting"]) for r in rows] == [
        ("LLaDA-8B-Base", "1", "ntk1_sgen_b64"),
        ("LLaDA-8B-Base", "4", "ntk4_sgen_b64"),
        ("LLaDA-8B-Instruct", "1", "ntk1_sgen_b64"),
        ("LLaDA-8B-Instruct", "4", "ntk4_sgen_b64"),
        ("LLaDA-1.5", "1", "ntk1_sgen_b64"),
        ("LLaDA-1.5", "4", "ntk4_sgen_b64"),
        ("LLaMA3-8B-Base", "1", "ntk1"),
        ("LLaMA3-8B-Instruct", "1", "ntk1"),
    ]
    expect = lt.context_metrics(_full(23.0)["8k"])  # run 1
    assert [rows[1][f"8k_{m}"] for m in METRICS] == [f"{expect[m]:.2f}" for m in METRICS]
    assert rows[1]["n_samples"] == "4750" and rows[1]["sample_limit"] == ""

    md = out["md"].read_text()
    assert md.startswith("# Table 1 (LongBench)\n")
    head, _align, *body = _md_rows(out["md"])
    assert head == ["Model", "λ", *(f"{c.upper()} {m}" for c in CONTEXTS for m in METRICS)]
    assert [r[0] for r in body] == [r["label"] for r in rows]
    assert body[1][2 + 7 + 6].strip("*") == f"{expect['Avg']:.1f}"  # 8K Avg, 1 decimal
    assert lt.NOTE_AVG in md and "SD: narrativeqa, qasper" in md
    assert "Limited run" not in md and "blank" not in md


def test_bold_best_per_column_md_and_tex(tmp_path, labels):
    runs = [_run("llada_8b_base", "llada"), _run("llada_8b_base", "llada", 4.0)]
    runs.append(_run("llama3_8b_base", "ar"))
    base = _scores(30.0)
    high = {**base, "lcc": base["lcc"] + 20}  # Code best for run 1 only
    tie = {s: v + 0.01 for s, v in base.items()}  # prints as run 0's values
    files = [
        _write(tmp_path / f"{i}.json", run, {"4k": s})
        for i, (run, s) in enumerate(zip(runs, (base, high, tie), strict=True))
    ]
    out = _build(tmp_path, _target(runs), labels, files, contexts=["4k"])
    _head, _align, *body = _md_rows(out["md"])
    sd, code = [r[2] for r in body], [r[2 + 5] for r in body]
    assert all(c.startswith("**") and c.endswith("**") for c in sd)  # a tie: all bold
    assert [c.startswith("**") for c in code] == [False, True, False]
    tex = _tex_body(out["tex"])
    assert [c[2 + 5].startswith(r"\textbf{") for c in tex] == [False, True, False]
    assert all(c[2].startswith(r"\textbf{") for c in tex)


def _balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_tex_structure(tmp_path, paper, labels):
    target = paper.targets["table1_longbench"]
    out = _build(tmp_path, target, labels, _paper_files(tmp_path, target))
    tex = out["tex"].read_text()
    assert _balanced(tex)
    lines = [ln for ln in tex.splitlines() if not ln.startswith("%")]
    assert lines[0] == r"\begin{tabular}{lc" + "r" * 14 + "}"
    assert lines[-1] == r"\end{tabular}"
    assert r"\multicolumn{7}{c}{4K} & \multicolumn{7}{c}{8K}" in lines[2]
    assert lines[3] == r"\cmidrule(lr){3-9} \cmidrule(lr){10-16}"
    assert lines[
        4
    ] == r"Model & $\lambda$ & SD & MD & Sum & ICL & Syn & Code & Avg & SD & MD & " + (
        r"Sum & ICL & Syn & Code & Avg \\"
    )
    body = _tex_body(out["tex"])
    assert len(body) == 8 and all(len(r) == 16 for r in body)
    assert tex.count(r"\midrule") == 1 + 4  # after the header, between the five models
    assert "% Avg = the mean of the 21 subset scores" in tex


def test_missing_subset_blanks_and_notes(tmp_path, labels):
    runs = [_run("llada_8b_base", "llada"), _run("llama3_8b_base", "ar")]
    partial = {
        c: {s: v for s, v in scores.items() if s != "lsht"} for c, scores in _full(30).items()
    }
    files = [
        _write(tmp_path / "a.json", runs[0], partial),
        _write(tmp_path / "b.json", runs[1], {"4k": _scores(25.0)}),  # no 8k at all
    ]
    out = _build(tmp_path, _target(runs), labels, files)
    rows = _read(out["csv"])
    blank = [m for m in METRICS if rows[0][f"4k_{m}"] == ""]
    assert blank == ["ICL", "Avg"]
    assert [rows[1][f"8k_{m}"] for m in METRICS] == [""] * 7
    assert all(rows[1][f"4k_{m}"] for m in METRICS)
    md = out["md"].read_text()
    assert "4K: ICL, Avg blank for LLaDA-8B-Base λ=1 (not scored: lsht; " in md
    assert "a category needs all its subsets, Avg all 21)." in md
    assert "8K: ICL, Avg blank for LLaDA-8B-Base λ=1 (not scored: lsht;" in md
    assert "8K: SD, MD, Sum, ICL, Syn, Code, Avg blank for LLaMA3-8B-Base λ=1 (no subset" in md
    _head, _align, *body = _md_rows(out["md"])
    assert body[1][2 + 7 :] == [""] * 7  # blank, never bold


def test_demo_subsets_note_lists_the_scored_ones(tmp_path, labels):
    demo = ["multifieldqa_en", "gov_report", "passage_count"]  # config/demo.yaml's
    runs = [_run("llada_tiny_base", "llada")]
    files = [_write(tmp_path / "a.json", runs[0], {"1k": _scores(40.0, demo)}, sample_limit=2)]
    out = _build(tmp_path, _target(runs), labels, files, published=(), contexts=["1k"])
    assert [_read(out["csv"])[0][f"1k_{m}"] for m in METRICS] == [""] * 7
    md = out["md"].read_text()
    assert (
        "1K: SD, MD, Sum, ICL, Syn, Code, Avg blank for every row "
        "(only multifieldqa_en, gov_report, passage_count scored;"
    ) in md
    assert "**Limited run (sample limit 2 per job: 4750 of 4750 samples)" in md
    assert len(_read(out["subsets_csv"])) == 3


def test_subsets_csv(tmp_path, labels):
    runs = [_run("llada_8b_base", "llada", 4.0)]
    files = [_write(tmp_path / "a.json", runs[0], _full(30.0))]
    out = _build(tmp_path, _target(runs), labels, files)
    rows = _read(out["subsets_csv"])
    assert (
        list(rows[0])
        == lt.SUBSET_COLUMNS
        == [
            "model",
            "label",
            "setting",
            "ntk_lambda",
            "context",
            "budget",
            "subset",
            "category",
            "score",
            "n",
            "truncated",
        ]
    )
    assert len(rows) == 2 * 21
    assert [(r["context"], r["subset"]) for r in rows[:2]] == [
        ("4k", "narrativeqa"),
        ("4k", "qasper"),
    ]
    lcc = next(r for r in rows if r["context"] == "8k" and r["subset"] == "lcc")
    assert (lcc["model"], lcc["label"], lcc["setting"], lcc["ntk_lambda"]) == (
        "llada_8b_base",
        "LLaDA-8B-Base",
        "ntk4_sgen_b64",
        "4",
    )
    assert (lcc["budget"], lcc["category"], lcc["n"], lcc["truncated"]) == (
        "7500",
        "Code",
        "500",
        "7",
    )
    assert lcc["score"] == f"{_full(30.0)['8k']['lcc']:.2f}"


def test_same_label_and_lambda_get_setting(tmp_path, labels):
    other = Run("longbench", "llada_8b_base", "llada", 1.0, (("block_length", 32), ("steps", 32)))
    runs = [_run("llada_8b_base", "llada"), other]
    files = [_write(tmp_path / f"{i}.json", r, _full(30.0)) for i, r in enumerate(runs)]
    out = _build(tmp_path, _target(runs), labels, files)
    assert [r["label"] for r in _read(out["csv"])] == [
        "LLaDA-8B-Base (ntk1_sgen_b64)",
        "LLaDA-8B-Base (ntk1_s32_b32)",
    ]
    comp = _read(out["comparison"])
    assert {r["published_model"] for r in comp} == {"LLaDA-8B-Base"}


# --- comparison -------------------------------------------------------------------------------


def test_comparison_on_real_table1(tmp_path, paper, labels):
    target = paper.targets["table1_longbench"]
    out = _build(tmp_path, target, labels, _paper_files(tmp_path, target))
    comp = _read(out["comparison"])
    assert list(comp[0]) == common.COMPARISON_COLUMNS
    assert len(comp) == 8 * 2 * 7
    row = next(r for r in comp if (r["row"], r["context"], r["metric"]) == ("4", "8k", "Syn"))
    assert (row["published_model"], row["published_ntk_lambda"]) == ("LLaDA-8B-Instruct", "4")
    assert float(row["published"]) == 72.9
    mine = lt.context_metrics(_full(29.0)["8k"])["Syn"]
    assert row["reproduced"] == f"{mine:.2f}"
    assert row["difference"] == f"{round(mine, 2) - 72.9:.2f}"
    assert row["note"] == ""
    avg = {r["note"] for r in comp if r["metric"] == "Avg"}
    assert avg == {lt.NOTE_AVG_COMPARISON}
    assert "published Avg not derivable from the published categories" in lt.NOTE_AVG_COMPARISON
    assert {r["note"] for r in comp if r["metric"] != "Avg"} == {""}
    assert "transcription" not in out["md"].read_text()  # no Table 1 row is flagged


def test_offset_copies_on_the_published_files():
    t1 = common.load_published([TABLE1], METRICS)
    assert lt.offset_copies(t1) == {}
    t3 = lt.offset_copies(common.load_published([TABLE3], METRICS))
    assert {k: [(c.source, c.offset) for c in v] for k, v in t3.items()} == {
        ("Dream-v0-7B-Instruct", 1.0, c): [(("Dream-v0-7B-Base", 1.0, c), 1.0)] for c in CONTEXTS
    }
    # With Table 1 beside it, Dream-Base shows as LLaDA-1.5 λ=4 + 1.0 (and Instruct + 2.0);
    # no Table 1 row is flagged (only the higher row of a pair is).
    both = lt.offset_copies(common.load_published([TABLE3, TABLE1], METRICS))
    assert set(both) == {
        (m, 1.0, c) for m in ("Dream-v0-7B-Base", "Dream-v0-7B-Instruct") for c in CONTEXTS
    }
    assert [(c.source[0], c.offset) for c in both[("Dream-v0-7B-Instruct", 1.0, "8k")]] == [
        ("Dream-v0-7B-Base", 1.0),
        ("LLaDA-1.5", 2.0),
    ]
    assert [(c.source, c.offset) for c in both[("Dream-v0-7B-Base", 1.0, "4k")]] == [
        (("LLaDA-1.5", 4.0, "4k"), 1.0)
    ]


def test_offset_copies_generic(tmp_path):
    head = "model,ntk_lambda,context,SD,MD,Sum,ICL,Syn,Code,Avg\n"
    p = tmp_path / "p.csv"
    p.write_text(
        head
        + "A,1,4k,1,2,3,4,5,6,7\n"
        + "B,1,4k,1.5,2.5,3.5,4.5,5.5,6.5,7.5\n"  # A + 0.5
        + "C,1,8k,1.5,2.5,3.5,4.5,5.5,6.5,7.5\n"  # another context: not compared
        + "D,1,4k,1.5,2.5,3.5,4.5,5.5,6.5,\n"  # a blank: not judged
        + "E,1,4k,1,2,3,4,5,6,8\n"  # one column off
        + "F,1,4k,1,2,3,4,5,6,7\n"  # identical to A: the later one flagged
    )
    found = lt.offset_copies(common.load_published([p], METRICS))
    assert {k[0]: [(c.source[0], c.offset) for c in v] for k, v in found.items()} == {
        "B": [("A", 0.5), ("F", 0.5)],
        "F": [("A", 0.0)],
    }
    assert lt.copy_note(found[("B", 1.0, "4k")]) == (
        "published B λ=1 4k = A λ=1 4k + 0.5, F λ=1 4k + 0.5 in every column: "
        "suspected transcription error in the paper, kept as published"
    )


def test_table3_flags_the_copied_dream_rows(tmp_path, paper, labels):
    target = paper.targets["table3_longbench_dream"]
    files = _paper_files(tmp_path, target)
    out = _build(tmp_path, target, labels, files, published=(TABLE3, TABLE1))
    assert out["md"].read_text().startswith("# Table 3 (LongBench)\n")
    comp = _read(out["comparison"])
    by_row = {
        label: [r for r in comp if r["label"] == label]
        for label in ("Dream-v0-7B-Base", "Dream-v0-7B-Instruct", "LLaMA3-8B-Base")
    }
    instruct = by_row["Dream-v0-7B-Instruct"]
    assert {r["published_model"] for r in instruct} == {"Dream-v0-7B-Instruct"}
    sd4 = next(r for r in instruct if (r["context"], r["metric"]) == ("4k", "SD"))
    assert sd4["note"] == (
        "published Dream-v0-7B-Instruct λ=1 4k = Dream-v0-7B-Base λ=1 4k + 1.0, "
        "LLaDA-1.5 λ=4 4k + 2.0 in every column: "
        "suspected transcription error in the paper, kept as published"
    )
    assert all("suspected transcription error" in r["note"] for r in instruct)
    avg8 = next(r for r in instruct if (r["context"], r["metric"]) == ("8k", "Avg"))
    assert avg8["note"].endswith("; " + lt.NOTE_AVG_COMPARISON)
    assert all("+ 1.0 in every column" in r["note"] for r in by_row["Dream-v0-7B-Base"])
    # The LLaMA3 rows are Table 1's, unflagged.
    llama = by_row["LLaMA3-8B-Base"]
    assert {r["note"] for r in llama} == {"", lt.NOTE_AVG_COMPARISON}
    ctx = next(r for r in llama if (r["context"], r["metric"]) == ("8k", "ICL"))
    assert (ctx["published_model"], float(ctx["published"])) == ("LLaMA3-8B-Base", 44.5)
    md = out["md"].read_text()
    assert (
        "The paper's Dream-v0-7B-Instruct λ=1 row (4k, 8k) equals Dream-v0-7B-Base λ=1 + 1.0 "
        "and LLaDA-1.5 λ=4 + 2.0 in every column: a suspected transcription error"
    ) in md
    assert "The paper's Dream-v0-7B-Base λ=1 row (4k, 8k) equals LLaDA-1.5 λ=4 + 1.0" in md
    assert "% The paper's Dream-v0-7B-Instruct" in out["tex"].read_text()


def test_table3_flag_without_table1(tmp_path, paper, labels):
    target = paper.targets["table3_longbench_dream"]
    dream = _target(target.runs[:2], name="table3_longbench_dream")
    out = _build(tmp_path, dream, labels, _paper_files(tmp_path, dream), published=(TABLE3,))
    comp = _read(out["comparison"])
    flagged = {r["label"] for r in comp if "transcription" in r["note"]}
    assert flagged == {"Dream-v0-7B-Instruct"}


def test_demo_comparison_by_position(tmp_path, labels):
    runs = [_run("dream_tiny_base", "dream"), _run("dream_tiny_instruct", "dream")]
    runs.append(_run("llama_tiny_base", "ar"))
    files = [_write(tmp_path / f"{i}.json", r, {"1k": _scores(30.0)}) for i, r in enumerate(runs)]
    target = _target(runs, name="table3_longbench_dream")
    out = _build(tmp_path, target, labels, files, published=(TABLE3, TABLE1), contexts=["1k"])
    comp = _read(out["comparison"])
    pairs = {(r["row"], r["published_model"], r["published_context"]) for r in comp}
    assert pairs == {
        ("1", "Dream-v0-7B-Base", "4k"),
        ("2", "Dream-v0-7B-Instruct", "4k"),
        ("3", "LLaMA3-8B-Base", "4k"),
    }
    assert all(r["note"].startswith(common.NOTE_BY_POSITION) for r in comp)
    second = [r for r in comp if r["row"] == "2"]
    assert all("Dream-v0-7B-Base λ=1 4k + 1.0" in r["note"] for r in second)
    assert not any("transcription" in r["note"] for r in comp if r["row"] == "3")


def test_comparison_without_published(tmp_path, labels):
    runs = [_run("llada_8b_base", "llada")]
    files = [_write(tmp_path / "a.json", runs[0], _full(30.0))]
    target = _target(runs, name="extension_longbench", extension=True)
    out = _build(tmp_path, target, labels, files, published=())
    comp = _read(out["comparison"])
    assert {r["note"] for r in comp} == {common.NOTE_NO_PUBLISHED}
    assert all(r["reproduced"] for r in comp)
    assert out["md"].read_text().startswith("# extension_longbench (LongBench)\n")


# --- errors and determinism -------------------------------------------------------------------


def _bad(tmp_path, labels, edit, match, contexts=CONTEXTS):
    run = _run("llama3_8b_base", "ar")
    path = _write(tmp_path / "bad" / "scores.json", run, _full(30.0), edit=edit)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: .*{match}"):
        _build(tmp_path, _target([run]), labels, [path], contexts=contexts)
    assert not (tmp_path / "out").exists()  # nothing written


def _set(key, value, i=None):
    def edit(data):
        (data if i is None else data["subsets"][i])[key] = value

    return edit


def test_bad_scores_files(tmp_path, labels):
    _bad(tmp_path, labels, _set("benchmark", "ruler"), "benchmark is 'ruler', not 'longbench'")
    _bad(
        tmp_path,
        labels,
        lambda d: d["subsets"].append(dict(d["subsets"][3])),
        "subset multifieldqa_zh at context 4k appears twice",
    )
    _bad(tmp_path, labels, _set("score", 100.5, 2), r"subsets\[2\]: score of .* outside 0\.\.100")
    _bad(tmp_path, labels, _set("score", -1, 2), "outside 0..100")
    _bad(tmp_path, labels, _set("score", "12", 0), r"score of narrativeqa is '12', not a number")
    _bad(tmp_path, labels, _set("subset", "nope", 0), "unknown LongBench subset 'nope'")
    _bad(tmp_path, labels, _set("category", "MD", 0), "narrativeqa has category 'MD', not 'SD'")
    _bad(tmp_path, labels, lambda d: d.pop("subsets"), r"lack key\(s\) subsets")
    _bad(tmp_path, labels, lambda d: d["subsets"][0].pop("score"), r"lacks key\(s\) score")
    _bad(tmp_path, labels, None, "subset narrativeqa at context '8k', not one of", ["4k"])


def test_run_without_file_or_file_of_no_run(tmp_path, labels):
    runs = [_run("llada_8b_base", "llada"), _run("llama3_8b_base", "ar")]
    files = [_write(tmp_path / f"{i}.json", r, _full(30.0)) for i, r in enumerate(runs)]
    with pytest.raises(ValueError, match=r"no scores file for run llama3_8b_base/ntk1 "):
        _build(tmp_path, _target(runs), labels, files[:1])
    stray = _write(tmp_path / "stray.json", _run("llama3_8b_base", "ar", 2.0), _full(30.0))
    with pytest.raises(ValueError, match=r"stray\.json: .*no run of target"):
        _build(tmp_path, _target(runs), labels, [*files, stray])
    with pytest.raises(ValueError, match=r"is not 'longbench_table'"):
        wrong = Target("t", "ruler_table", {}, runs)
        lt.write_target(wrong, labels, files, (), CONTEXTS, *_outputs(tmp_path, "t").values())


def test_reruns_are_byte_identical(tmp_path, paper, labels):
    target = paper.targets["table3_longbench_dream"]
    files = _paper_files(tmp_path, target)
    first = _build(tmp_path / "one", target, labels, files, published=(TABLE3, TABLE1))
    second = _build(tmp_path / "two", target, labels, files, published=(TABLE3, TABLE1))
    for key in first:
        data = first[key].read_bytes()
        assert data == second[key].read_bytes()
        assert b"\r" not in data
