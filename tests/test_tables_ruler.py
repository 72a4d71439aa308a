"""Tests for the RULER tables (paper Tables 2 and 4) and the shared table helpers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from longllada.benchmarks.ruler import GROUPS, TASKS
from longllada.config import Run, Target
from longllada.tables import common
from longllada.tables import ruler_table as rt

PUBLISHED = Path(__file__).resolve().parents[1] / "config" / "published"
TABLE2 = PUBLISHED / "table2_ruler.csv"
TABLE4 = PUBLISHED / "table4_ruler_dream.csv"
CONTEXTS = ["4k", "8k", "16k"]
LENGTHS = {"1k": 1024, "4k": 4096, "8k": 8192, "16k": 16384}
LABELS = {
    "llada_8b_base": "LLaDA-8B-Base",
    "llama3_8b_base": "LLaMA3-8B-Base",
    "llama3_8b_instruct": "LLaMA3-8B-Instruct",
    "dream_v0_base": "Dream-v0-7B-Base",
    "llada_tiny_base": "LLaDA-tiny-Base",
    "llama_tiny_base": "LLaMA-tiny-Base",
}


def _llada(model: str = "llada_8b_base", lam: float = 1.0, steps: int = 32) -> Run:
    return Run("ruler", model, "llada", lam, (("block_length", 32), ("steps", steps)))


def _ar(model: str = "llama3_8b_base", lam: float = 1.0) -> Run:
    return Run("ruler", model, "ar", lam)


def _dream(model: str = "dream_v0_base") -> Run:
    return Run("ruler", model, "dream", 1.0, (("steps", 32),))


def _target(runs: list[Run], name: str = "table2_ruler", **spec) -> Target:
    return Target(name=name, kind="ruler_table", spec=spec, runs=runs)


def _scores(base: float, tasks=TASKS) -> dict[str, float]:
    # Distinct, uneven scores so a mean over the wrong tasks shows.
    return {t: round(min(100.0, base + 3.7 * i * (i % 3)), 3) for i, t in enumerate(tasks)}


def _write(
    path: Path,
    run: Run,
    per_context: dict[str, dict[str, float]],
    *,
    sample_limit: int | None = None,
    n_samples: int = 100,
    n_full: int = 100,
) -> Path:
    """A scores.json as the RULER scoring stage writes it."""
    tasks = [
        {"context": c, "length": LENGTHS[c], "task": t, "score": s, "n": 10}
        for c, scores in per_context.items()
        for t, s in scores.items()
    ]
    data = {
        "benchmark": "ruler",
        "model": run.model,
        "setting": run.setting,
        "family": run.family,
        "ntk_lambda": run.ntk_lambda,
        "sampler": dict(run.sampler),
        "sample_limit": sample_limit,
        "n_samples": n_samples,
        "n_full": n_full,
        "tasks": tasks,
        "samples": [],
        "provenance": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _full(base: float, contexts=CONTEXTS) -> dict[str, dict[str, float]]:
    return {c: _scores(base - 10 * k) for k, c in enumerate(contexts)}


def _outputs(tmp: Path, name: str = "table2_ruler") -> dict[str, Path]:
    return {
        "csv": tmp / f"{name}.csv",
        "md": tmp / f"{name}.md",
        "tex": tmp / f"{name}.tex",
        "comparison": tmp / f"{name}.comparison.csv",
        "tasks_csv": tmp / f"{name}.tasks.csv",
    }


def _build(tmp: Path, target: Target, inputs, published=(TABLE2,), contexts=CONTEXTS):
    out = _outputs(tmp / "out", target.name)
    rt.write_target(target, LABELS, inputs, published, contexts, **out)
    return out


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _md_rows(path: Path) -> list[list[str]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]


def _tex_body(path: Path) -> list[list[str]]:
    text = path.read_text()
    body = text.split("\\midrule\n", 1)[1].split("\\bottomrule")[0]
    return [
        [c.strip() for c in ln.removesuffix(" \\\\").split(" & ")]
        for ln in body.splitlines()
        if ln and ln != "\\midrule"
    ]


@pytest.fixture
def table2(tmp_path):
    """LLaDA-8B-Base at λ 1 and 4 and LLaMA3-8B-Base at λ 1, all 13 tasks at 4k/8k/16k."""
    runs = [_llada(lam=1.0), _llada(lam=4.0), _ar()]
    files = [
        _write(tmp_path / f"in{i}" / "scores.json", run, _full(60.0 + 5 * i))
        for i, run in enumerate(runs)
    ]
    return runs, files


# --- helpers ----------------------------------------------------------------------------------


def test_text_helpers():
    assert common.table_title("table2_ruler", "RULER") == "Table 2 (RULER)"
    assert common.table_title("table4_ruler_dream", "RULER") == "Table 4 (RULER)"
    assert common.table_title("extension_ruler", "RULER") == "extension_ruler (RULER)"
    assert [common.format_number(v) for v in (99.46, 99.45001, 100.0, None, -0.01)] == [
        "99.5",
        "99.5",
        "100.0",
        "",
        "0.0",
    ]
    assert common.escape_latex("a_b 50% & $x {y} #1 λ") == (r"a\_b 50\% \& \$x \{y\} \#1 $\lambda$")


def test_best_flags_ties_and_blanks():
    assert common.best_flags([1.0, 3.0, None, 3.0]) == [False, True, False, True]
    # compared as shown: 99.52 and 99.48 both print 99.5
    assert common.best_flags([99.52, 99.48, 90.0]) == [True, True, False]
    assert common.best_flags([None, None]) == [False, False]


def test_context_metrics_means_of_tasks():
    scores = _scores(40.0)
    m = rt.context_metrics(scores)
    niah = sum(scores[t] for t in TASKS[:8]) / 8
    agg = (scores["vt"] + scores["cwe"] + scores["fwe"]) / 3
    qa = (scores["qa_squad"] + scores["qa_hotpotqa"]) / 2
    assert m["NIAH"] == pytest.approx(niah)
    assert m["AGG"] == pytest.approx(agg)
    assert m["QA"] == pytest.approx(qa)
    assert m["Avg"] == pytest.approx(sum(scores.values()) / 13)
    assert m["Avg"] == pytest.approx((8 * niah + 3 * agg + 2 * qa) / 13)
    assert abs(m["Avg"] - (niah + agg + qa) / 3) > 0.5  # not the mean of the groups


def test_context_metrics_blank_when_tasks_missing():
    scores = _scores(40.0, tasks=[*GROUPS["AGG"], *GROUPS["QA"], "niah_single_1"])
    m = rt.context_metrics(scores)
    assert m["NIAH"] is None and m["Avg"] is None
    assert m["AGG"] is not None and m["QA"] is not None


# --- the table files --------------------------------------------------------------------------


def test_wide_csv_columns_order_and_values(tmp_path, table2):
    runs, files = table2
    out = _build(tmp_path, _target(runs), list(reversed(files)))  # matched by content
    rows = _read(out["csv"])
    assert list(rows[0]) == [
        "model",
        "label",
        "setting",
        "ntk_lambda",
        *(f"{c}_{m}" for c in CONTEXTS for m in ("NIAH", "AGG", "QA", "Avg")),
        "n_samples",
        "sample_limit",
    ]
    assert [(r["model"], r["ntk_lambda"], r["setting"]) for r in rows] == [
        ("llada_8b_base", "1", "ntk1_s32_b32"),
        ("llada_8b_base", "4", "ntk4_s32_b32"),
        ("llama3_8b_base", "1", "ntk1"),
    ]
    scores = _full(65.0)["8k"]  # run 1
    expect = rt.context_metrics(scores)
    assert rows[1]["8k_NIAH"] == f"{expect['NIAH']:.2f}"
    assert rows[1]["8k_Avg"] == f"{expect['Avg']:.2f}"
    assert rows[1]["n_samples"] == "100" and rows[1]["sample_limit"] == ""

    md = out["md"].read_text()
    assert md.startswith("# Table 2 (RULER)\n")
    head, _align, *body = _md_rows(out["md"])
    assert head[:6] == ["Model", "λ", "4K NIAH", "4K AGG", "4K QA", "4K Avg"]
    assert head[-1] == "16K Avg" and len(head) == 2 + 12
    assert [r[:2] for r in body] == [
        ["LLaDA-8B-Base", "1"],
        ["LLaDA-8B-Base", "4"],
        ["LLaMA3-8B-Base", "1"],
    ]
    assert body[1][2 + 4 + 3].strip("*") == f"{expect['Avg']:.1f}"  # 8K Avg, 1 decimal
    assert "mean of the 13 task" in md and "Limited run" not in md


def test_bold_best_per_column_md_and_tex(tmp_path):
    runs = [_llada(lam=1.0), _llada(lam=4.0), _ar()]
    base = _scores(50.0)
    high = {**base, "cwe": base["cwe"] + 30}  # AGG best for run 1 only
    tie = {t: s + 0.01 for t, s in base.items()}  # prints as run 0's values
    files = [
        _write(tmp_path / "a.json", runs[0], {"4k": base}),
        _write(tmp_path / "b.json", runs[1], {"4k": high}),
        _write(tmp_path / "c.json", runs[2], {"4k": tie}),
    ]
    out = _build(tmp_path, _target(runs), files, contexts=["4k"])
    _head, _align, *body = _md_rows(out["md"])
    niah, agg = [r[2] for r in body], [r[3] for r in body]
    # NIAH: all three print the same -> all bold
    assert all(c.startswith("**") and c.endswith("**") for c in niah)
    assert [c.startswith("**") for c in agg] == [False, True, False]
    tex = _tex_body(out["tex"])
    assert [c[3].startswith(r"\textbf{") for c in tex] == [False, True, False]
    assert all(c[2].startswith(r"\textbf{") for c in tex)


def _balanced(text: str) -> bool:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_tex_structure(tmp_path, table2):
    runs, files = table2
    out = _build(tmp_path, _target(runs), files)
    tex = out["tex"].read_text()
    assert _balanced(tex)
    lines = [ln for ln in tex.splitlines() if not ln.startswith("%")]
    assert lines[0] == r"\begin{tabular}{lc" + "r" * 12 + "}"
    assert lines[-1] == r"\end{tabular}"
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert r"\documentclass" not in tex
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in tex
    assert [rf"\multicolumn{{4}}{{c}}{{{c.upper()}}}" in lines[2] for c in CONTEXTS] == [True] * 3
    assert lines[3] == r"\cmidrule(lr){3-6} \cmidrule(lr){7-10} \cmidrule(lr){11-14}"
    assert lines[4].startswith(r"Model & $\lambda$ & NIAH & AGG & QA & Avg & NIAH")
    body = _tex_body(out["tex"])
    assert all(len(r) == 14 for r in body)
    assert tex.count(r"\midrule") == 2  # after the header, and between the two models


def test_missing_tasks_blank_groups_and_note(tmp_path):
    runs = [_llada(model="llada_tiny_base"), _ar(model="llama_tiny_base")]
    demo_tasks = ["niah_single_1", "vt", "qa_squad"]  # the demo config's
    some = [*GROUPS["AGG"], *GROUPS["QA"], "niah_single_1"]
    files = [
        _write(tmp_path / "a.json", runs[0], {"1k": _scores(50.0, demo_tasks)}),
        _write(tmp_path / "b.json", runs[1], {"1k": _scores(50.0, some)}),
    ]
    out = _build(tmp_path, _target(runs), files, published=(), contexts=["1k"])
    rows = _read(out["csv"])
    assert [rows[0][f"1k_{m}"] for m in ("NIAH", "AGG", "QA", "Avg")] == ["", "", "", ""]
    assert [rows[1][f"1k_{m}"] != "" for m in ("NIAH", "AGG", "QA", "Avg")] == [
        False,
        True,
        True,
        False,
    ]
    md = out["md"].read_text()
    assert "1K: NIAH, AGG, QA, Avg blank for LLaDA-tiny-Base λ=1" in md
    assert "not scored: niah_single_2" in md and "cwe" in md
    assert "1K: NIAH, Avg blank for LLaMA-tiny-Base λ=1" in md
    _head, _align, *body = _md_rows(out["md"])
    assert body[0][2:] == ["", "", "", ""]  # blank, never bold
    tasks = _read(out["tasks_csv"])
    assert list(tasks[0]) == rt.TASK_COLUMNS
    assert [(t["label"], t["task"], t["group"]) for t in tasks[:3]] == [
        ("LLaDA-tiny-Base", "niah_single_1", "NIAH"),
        ("LLaDA-tiny-Base", "vt", "AGG"),
        ("LLaDA-tiny-Base", "qa_squad", "QA"),
    ]
    assert tasks[0]["length"] == "1024" and tasks[0]["n"] == "10"
    assert tasks[1]["score"] == f"{_scores(50.0, demo_tasks)['vt']:.2f}"
    assert len(tasks) == 3 + len(some)


def test_context_absent_for_every_row_note(tmp_path):
    runs = [_ar()]
    files = [_write(tmp_path / "a.json", runs[0], {"4k": _scores(50.0)})]
    out = _build(tmp_path, _target(runs), files, contexts=["4k", "8k"])
    assert "8K: NIAH, AGG, QA, Avg blank for every row (no task scored;" in out["md"].read_text()


def test_limited_run_banner(tmp_path):
    runs = [_ar()]
    files = [
        _write(tmp_path / "a.json", runs[0], _full(70.0), sample_limit=5, n_samples=65, n_full=1300)
    ]
    out = _build(tmp_path, _target(runs), files)
    md = out["md"].read_text()
    assert "**Limited run (sample limit 5 per job: 65 of 1300 samples)" in md
    assert "not comparable with the paper" in md
    assert "% Limited run" in out["tex"].read_text()


def test_same_label_and_lambda_get_setting(tmp_path):
    runs = [_llada(steps=32), _llada(steps=64)]
    files = [_write(tmp_path / f"{i}.json", r, _full(70.0)) for i, r in enumerate(runs)]
    out = _build(tmp_path, _target(runs), files)
    labels = [r["label"] for r in _read(out["csv"])]
    assert labels == ["LLaDA-8B-Base (ntk1_s32_b32)", "LLaDA-8B-Base (ntk1_s64_b32)"]
    assert r"LLaDA-8B-Base (ntk1\_s32\_b32)" in out["tex"].read_text()
    # both still compared with the paper's LLaDA-8B-Base λ 1
    comp = _read(out["comparison"])
    assert {r["published_model"] for r in comp} == {"LLaDA-8B-Base"}


# --- comparison -------------------------------------------------------------------------------


def test_comparison_exact_keys_on_real_table2(tmp_path, table2):
    runs, files = table2
    extra = _ar(model="llama3_8b_base", lam=2.0)  # not in the paper
    files = [*files, _write(tmp_path / "x.json", extra, _full(50.0))]
    out = _build(tmp_path, _target([*runs, extra]), files)
    comp = _read(out["comparison"])
    assert list(comp[0]) == common.COMPARISON_COLUMNS
    assert len(comp) == 4 * 3 * 4
    row = next(
        r for r in comp if (r["row"], r["context"], r["metric"]) == ("2", "4k", "NIAH")
    )  # LLaDA-8B-Base λ 4
    assert (row["label"], row["ntk_lambda"]) == ("LLaDA-8B-Base", "4")
    assert (row["published_model"], row["published_ntk_lambda"]) == ("LLaDA-8B-Base", "4")
    assert row["published_context"] == "4k"
    assert float(row["published"]) == 99.5
    mine = rt.context_metrics(_full(65.0)["4k"])["NIAH"]
    assert row["reproduced"] == f"{mine:.2f}"
    assert row["difference"] == f"{round(mine, 2) - 99.5:.2f}"
    assert row["note"] == ""
    llama = [r for r in comp if r["row"] == "3" and r["context"] == "16k"]
    assert [float(r["published"]) for r in llama] == [0.0, 0.0, 0.0, 0.0]
    missing = [r for r in comp if r["row"] == "4"]
    assert {r["note"] for r in missing} == {"not in the paper"}
    assert {r["published"] + r["published_model"] + r["difference"] for r in missing} == {""}


def test_table4_takes_llama3_rows_from_table2(tmp_path):
    runs = [_dream(), _ar("llama3_8b_instruct", 4.0)]
    files = [_write(tmp_path / f"{i}.json", r, _full(60.0)) for i, r in enumerate(runs)]
    target = _target(runs, name="table4_ruler_dream")
    out = _build(tmp_path, target, files, published=(TABLE4, TABLE2))
    assert out["md"].read_text().startswith("# Table 4 (RULER)\n")
    comp = _read(out["comparison"])
    dream = next(
        r for r in comp if r["row"] == "1" and r["context"] == "8k" and r["metric"] == "QA"
    )
    assert (dream["published_model"], float(dream["published"])) == ("Dream-v0-7B-Base", 61.5)
    llama = next(
        r for r in comp if r["row"] == "2" and r["context"] == "16k" and r["metric"] == "AGG"
    )
    assert (llama["published_model"], llama["published_ntk_lambda"]) == ("LLaMA3-8B-Instruct", "4")
    assert float(llama["published"]) == 89.5
    assert {r["note"] for r in comp} == {""}


def test_comparison_by_position_for_demo(tmp_path):
    runs = [_llada(model="llada_tiny_base"), _llada(model="llada_tiny_base", lam=2.0)]
    files = [
        _write(tmp_path / f"{i}.json", r, {"1k": _scores(80.0 - 9 * i)}) for i, r in enumerate(runs)
    ]
    out = _build(tmp_path, _target(runs), files, contexts=["1k"])
    comp = _read(out["comparison"])
    assert {r["note"] for r in comp} == {"matched by position: not the paper's model/context"}
    first = [r for r in comp if r["row"] == "1"]
    second = [r for r in comp if r["row"] == "2"]
    assert {(r["published_model"], r["published_ntk_lambda"]) for r in first} == {
        ("LLaDA-8B-Base", "1")
    }
    assert {(r["published_model"], r["published_ntk_lambda"]) for r in second} == {
        ("LLaDA-8B-Base", "4")
    }
    assert {r["context"] + ">" + r["published_context"] for r in comp} == {"1k>4k"}
    assert [float(r["published"]) for r in first] == [99.7, 65.2, 82.5, 89.1]


def test_comparison_by_position_stays_within_a_family(tmp_path):
    # The demo's Table 2: two LLaDA rows, then LLaMA: the LLaMA row is compared with the
    # paper's first LLaMA3 row, not with its third LLaDA row.
    runs = [
        _llada(model="llada_tiny_base"),
        _llada(model="llada_tiny_base", lam=2.0),
        _ar(model="llama_tiny_base"),
    ]
    files = [_write(tmp_path / f"{i}.json", r, {"1k": _scores(40.0)}) for i, r in enumerate(runs)]
    out = _build(tmp_path, _target(runs), files, contexts=["1k"])
    comp = _read(out["comparison"])
    pairs = {(r["row"], r["published_model"], r["published_ntk_lambda"]) for r in comp}
    assert pairs == {
        ("1", "LLaDA-8B-Base", "1"),
        ("2", "LLaDA-8B-Base", "4"),
        ("3", "LLaMA3-8B-Base", "1"),
    }


def test_comparison_by_position_rows_beyond_published(tmp_path):
    small = tmp_path / "small.csv"
    small.write_text("model,ntk_lambda,context,NIAH,AGG,QA,Avg\nLLaDA-X,1,4k,1.0,2.0,3.0,\n")
    runs = [_llada(model="llada_tiny_base"), _ar(model="llama_tiny_base")]
    files = [_write(tmp_path / f"{i}.json", r, {"1k": _scores(50.0)}) for i, r in enumerate(runs)]
    out = _build(tmp_path, _target(runs), files, published=(small,), contexts=["1k"])
    comp = _read(out["comparison"])
    first, second = comp[:4], comp[4:]
    assert [r["published"] for r in first] == ["1.0", "2.0", "3.0", ""]
    assert first[3]["difference"] == "" and first[0]["difference"] != ""
    assert {r["published_model"] + r["published"] for r in second} == {""}
    assert {r["note"] for r in second} == {
        "matched by position: no published number at this position"
    }


def test_comparison_without_published(tmp_path, table2):
    runs, files = table2
    target = _target(runs, name="extension_ruler", extension=True)
    out = _build(tmp_path, target, files, published=())
    comp = _read(out["comparison"])
    assert {r["note"] for r in comp} == {"no published numbers"}
    assert {r["published"] + r["published_model"] + r["difference"] for r in comp} == {""}
    assert all(r["reproduced"] for r in comp)
    assert out["md"].read_text().startswith("# extension_ruler (RULER)\n")


# --- errors and determinism -------------------------------------------------------------------


def test_run_without_file_or_file_of_no_run(tmp_path, table2):
    runs, files = table2
    with pytest.raises(ValueError, match=r"no scores file for run llama3_8b_base/ntk1 .*"):
        _build(tmp_path, _target(runs), files[:2])
    stray = _write(tmp_path / "stray" / "scores.json", _ar(lam=13.0), _full(60.0))
    with pytest.raises(ValueError, match=rf"{re.escape(str(stray))}: .*no run of target"):
        _build(tmp_path, _target(runs), [*files, stray])
    with pytest.raises(ValueError, match=rf"{re.escape(str(files[0]))}: a second scores file"):
        _build(tmp_path, _target(runs), [*files, files[0]])


def test_bad_scores_files(tmp_path):
    run = _ar()
    path = _write(tmp_path / "a.json", run, {"4k": {"vt": 1.0}})
    data = json.loads(path.read_text())
    data["tasks"][0]["task"] = "nope"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: .*unknown RULER task"):
        _build(tmp_path, _target([run]), [path])
    other = tmp_path / "c.json"
    _write(other, run, {"8k": {"vt": 1.0}})
    with pytest.raises(ValueError, match=r"c\.json: task vt at context '8k', not one of"):
        _build(tmp_path, _target([run]), [other], contexts=["4k"])


def test_duplicate_published_rows(tmp_path, table2):
    runs, files = table2
    with pytest.raises(ValueError, match=r"table2_ruler\.csv and .*table2_ruler\.csv: .*twice"):
        _build(tmp_path, _target(runs), files, published=(TABLE2, TABLE2))
    dup = tmp_path / "dup.csv"
    dup.write_text("model,ntk_lambda,context,NIAH,AGG,QA,Avg\nX,1,4k,1,2,3,4\nX,1.0,4k,1,2,3,4\n")
    with pytest.raises(ValueError, match=r"dup\.csv: published row X, λ 1, 4k appears twice"):
        _build(tmp_path, _target(runs), files, published=(dup,))
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_published_missing_columns(tmp_path, table2):
    runs, files = table2
    bad = tmp_path / "bad.csv"
    bad.write_text("model,context,NIAH,AGG,Avg\nX,4k,1,2,3\n")
    with pytest.raises(
        ValueError, match=r"bad\.csv: published table lacks column\(s\) ntk_lambda, QA"
    ):
        _build(tmp_path, _target(runs), files, published=(bad,))


def test_reruns_are_byte_identical(tmp_path, table2):
    runs, files = table2
    first = _build(tmp_path / "one", _target(runs), files)
    second = _build(tmp_path / "two", _target(runs), files)
    for key in first:
        data = first[key].read_bytes()
        assert data == second[key].read_bytes()
        assert b"\r" not in data


def test_published_row_one_cell_short_or_malformed_is_named(tmp_path):
    """A published row one cell short used to shift its values one column left, silently; the
    tables and the figures read published CSVs through one reader that refuses it, and names
    file, line and column for a cell that is not a number."""
    from longllada.figures import niah_figs, perplexity_fig1a

    head = "model,ntk_lambda,context,NIAH,AGG,QA,Avg\n"
    short = tmp_path / "short.csv"
    short.write_text(head + "X,1,4k,1,2,3,4\nY,1,4k,2,3,4\n")  # one cell short
    with pytest.raises(ValueError, match=r"short\.csv: line 3: 6 cells, the header has 7"):
        common.load_published([short], rt.METRICS)
    long = tmp_path / "long.csv"
    long.write_text(head + "X,1,4k,1,2,3,4,5\n")
    with pytest.raises(ValueError, match=r"long\.csv: line 2: 8 cells, the header has 7"):
        common.load_published([long], rt.METRICS)
    bad = tmp_path / "bad.csv"
    bad.write_text(head + "X,1,4k,1,2,3,4\nY,1,4k,1,2,n/a,4\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 3: QA 'n/a' is not a number"):
        common.load_published([bad], rt.METRICS)
    # the NIAH figures' published files
    cells = tmp_path / "cells.csv"
    cells.write_text("model,length,depth,score\nA,1000,0,100\nA,1000,50\n")
    with pytest.raises(ValueError, match=r"cells\.csv: line 3: 3 cells, the header has 4"):
        niah_figs.load_published(cells)
    cells.write_text("model,length,depth,score\nA,1000,0,100\nA,1000,50,full\n")
    with pytest.raises(ValueError, match=r"cells\.csv: line 3: score 'full' is not a number"):
        niah_figs.load_published(cells)
    overall = tmp_path / "overall.csv"
    overall.write_text("figure,model,steps,ntk_lambda,overall\n2a,A,32,1,50\n2b,B,1,40\n")
    with pytest.raises(ValueError, match=r"overall\.csv: line 3: 4 cells, the header has 5"):
        niah_figs.load_published(overall)
    # Figure 1a's
    ppl = tmp_path / "ppl.csv"
    ppl.write_text("model,context_tokens,perplexity\nA,64,10.5\nA,128\n")
    with pytest.raises(ValueError, match=r"ppl\.csv: line 3: 2 cells, the header has 3"):
        perplexity_fig1a.load_published(ppl)
    ppl.write_text("model,context_tokens,perplexity\nA,64,10.5\nA,12 8,9\n")
    with pytest.raises(ValueError, match=r"ppl\.csv: line 3: context_tokens '12 8' is not a"):
        perplexity_fig1a.load_published(ppl)
