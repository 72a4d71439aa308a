"""The reproduction report: verdicts from hand-made comparison files, run facts, the report's
Markdown and HTML, `longllada compare`, and the perplexity comparison it reads."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from longllada import cli
from longllada.config import ConfigError, Model, Study
from longllada.figures import perplexity_fig1a as ppl
from longllada.reproduction import report as rp
from longllada.reproduction import run_facts as rf
from longllada.reproduction.verdicts import (
    Tolerances,
    any_outside,
    format_table,
    read_comparison,
    summary_rows,
)

ROOT = Path(__file__).resolve().parents[1]
TABLE_HEAD = (
    "row,model,label,ntk_lambda,context,metric,published_model,published_ntk_lambda,"
    "published_context,published,reproduced,difference,note\n"
)
NIAH_HEAD = (
    "panel,kind,length,depth,published_figure,published_model,published_steps,"
    "published_ntk_lambda,published,reproduced,difference\n"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ruler_file(tmp_path: Path) -> Path:
    """Five hand-made cells of a RULER table: inside, on the edge, outside, missing, ours only."""
    return write(
        tmp_path / "paper_figures/table2_ruler.comparison.csv",
        TABLE_HEAD
        + "0,llada_8b_base,LLaDA-8B-Base,1,4k,NIAH,LLaDA-8B-Base,1,4k,90.0,91.5,1.5,\n"
        + "0,llada_8b_base,LLaDA-8B-Base,1,4k,AGG,LLaDA-8B-Base,1,4k,50.0,48.0,-2.0,\n"
        + "0,llada_8b_base,LLaDA-8B-Base,1,4k,QA,LLaDA-8B-Base,1,4k,40.0,42.5,2.5,\n"
        + "0,llada_8b_base,LLaDA-8B-Base,1,16k,QA,LLaDA-8B-Base,1,16k,10.0,,,\n"
        + "1,llada_8b_base,LLaDA-8B-Base (x),9,4k,QA,,,,,33.0,,not in the paper\n"
        + "2,llada_8b_base,LLaDA-8B-Base,1,8k,QA,,,,,,,\n",  # neither side: no cell
    )


def test_verdicts_of_a_hand_made_table_comparison(tmp_path: Path) -> None:
    result = read_comparison(ruler_file(tmp_path), "table2_ruler", "ruler_table")
    tol = Tolerances()
    assert [c.verdict(tol) for c in result.cells] == [
        "inside",
        "inside",  # |−2.0| is on the ±2 edge: inside
        "outside",
        "missing",
        "unpublished",
    ]
    assert {c.group for c in result.cells} == {"ruler"}
    assert result.cells[2].what == "LLaDA-8B-Base λ=1 4k QA"
    assert result.cells[2].difference == pytest.approx(2.5)
    counts = result.counts(tol)
    assert (counts["inside"], counts["outside"], counts["missing"], counts["unpublished"]) == (
        2,
        1,
        1,
        1,
    )
    assert result.status(tol) == "outside" and any_outside([result], tol)
    # a looser tolerance from the config takes the outside cell in
    loose = Tolerances.from_config({"report": {"tolerances": {"ruler": 3}}})
    assert loose.ruler == 3 and loose.longbench == 2
    assert result.status(loose) == "inside" and not any_outside([result], loose)
    text = format_table([result], tol, "outside")
    assert re.search(r"^table2_ruler\s+outside\s+2\s+1\s+1\s+1\s+ruler ±2$", text, re.M)
    assert "outside     LLaDA-8B-Base λ=1 4k QA: paper 40.0, ours 42.5, diff 2.5" in text
    assert "4k NIAH" not in text  # only the outside cells are listed
    assert "4k NIAH" in format_table([result], tol, "all")


def test_niah_cells_and_overall_have_their_own_tolerances(tmp_path: Path) -> None:
    path = write(
        tmp_path / "f.comparison.csv",
        NIAH_HEAD
        + "a,cell,4000,50,2a,LLaDA-8B-Base,32,1,80,71,-9\n"
        + "a,cell,4000,60,2a,LLaDA-8B-Base,32,1,80,69,-11\n"
        + "a,average_depth_score,4000,,2a,LLaDA-8B-Base,32,1,80,75,-5\n"
        + "a,overall,,,2a,LLaDA-8B-Base,32,1,60.5,63,2.5\n"
        + "b,overall,,,2b,LLaMA3-8B-Base,,1,40,44,4\n",
    )
    result = read_comparison(path, "figure2_niah_direct_extrapolation")
    tol = Tolerances()
    assert [(c.group, c.verdict(tol)) for c in result.cells] == [
        ("niah_cell", "inside"),
        ("niah_cell", "outside"),
        ("niah_cell", "inside"),
        ("niah_overall", "inside"),
        ("niah_overall", "outside"),
    ]
    assert result.cells[0].what == "panel a length 4000 depth 50"
    assert summary_rows([result], tol)[0]["tolerance"] == "niah_cell ±10, niah_overall ±3"


def test_perplexity_cells_are_relative(tmp_path: Path) -> None:
    path = write(
        tmp_path / "figure1a_perplexity.comparison.csv",
        "model,label,ntk_lambda,context_tokens,published_model,published,reproduced,difference,"
        "relative_difference,note\n"
        "m,LLaDA-8B-Base,1,64,LLaDA-8B-Base,10.0,10.4,0.4,0.04,\n"
        "m,LLaDA-8B-Base,1,128,LLaDA-8B-Base,10.0,10.6,0.6,0.06,\n"
        "m,LLaDA-8B-Base,1,192,LLaDA-8B-Base,100.0,96.0,-4,-0.04,\n",
    )
    result = read_comparison(path, "figure1a_perplexity", "perplexity_curve")
    verdicts = [c.verdict(Tolerances()) for c in result.cells]
    assert verdicts == ["inside", "outside", "inside"]  # 5 % of the published value
    assert Tolerances().describe("ppl_relative") == "±5 %"


def test_bad_comparison_files_are_reported_not_raised(tmp_path: Path) -> None:
    tol = Tolerances()
    absent = read_comparison(tmp_path / "nope.comparison.csv", "table1_longbench")
    assert absent.status(tol) == "not built" and "does not exist" in absent.error
    odd = read_comparison(write(tmp_path / "x.comparison.csv", "a,b\n1,2\n"), "x")
    assert odd.status(tol) == "error" and "no known comparison layout" in odd.error
    # one unreadable row is named by file and line; the rows around it still count
    path = write(
        tmp_path / "table1_longbench.comparison.csv",
        TABLE_HEAD
        + "0,m,LLaDA-8B-Base,1,4k,SD,,,,20.0,21.0,1.0,\n"
        + "0,m,LLaDA-8B-Base,1,4k,MD,,,,twenty,21.0,,\n"
        + "0,m,LLaDA-8B-Base,1,4k,Sum,,,,20.0,30.0,10.0,"
        + "suspected transcription error in the paper\n",
    )
    result = read_comparison(path, "table1_longbench")  # the kind from the name: LongBench
    assert [c.group for c in result.cells] == ["longbench", "longbench"]
    assert len(result.problems) == 1 and f"{path}:3:" in result.problems[0]
    assert result.cells[1].suspect
    text = format_table([result], tol, "outside")
    assert "row skipped" in text and "(published number suspect)" in text
    # a table comparison of neither benchmark cannot be given a tolerance
    other = read_comparison(
        write(tmp_path / "t.comparison.csv", TABLE_HEAD + "0,m,L,1,4k,SD,,,,1,2,1,\n"), "t"
    )
    assert not other.cells and "neither RULER nor LongBench" in other.problems[0]


def test_report_tolerances_are_validated(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    config["report"] = {"tolerances": {"ruler": 1.5}}
    assert Tolerances.from_config(Study(copy.deepcopy(config)).config).ruler == 1.5
    config["report"] = {"tolerances": {"rulr": 1.5}}
    with pytest.raises(ConfigError, match="rulr"):
        Study(config)
    config["report"] = {"tolerances": {"ruler": -1}}
    with pytest.raises(ConfigError, match="report"):
        Study(config)


# --- longllada compare ------------------------------------------------------------------------


def test_compare_prints_the_verdicts_and_strict_fails_outside(tmp_path: Path, capsys) -> None:
    ruler_file(tmp_path)
    assert cli.main(["compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("target") and "table2_ruler" in out
    assert "table1_longbench" not in out  # a partial run: only the targets that exist
    assert cli.main(["compare", str(tmp_path / "paper_figures"), "--strict"]) == 1
    capsys.readouterr()
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    config["report"] = {"tolerances": {"ruler": 5}}
    loose = write(tmp_path / "loose.yaml", yaml.safe_dump(config))
    # (not --strict: the paper's other targets are not built, and those fail a strict check)
    assert cli.main(["compare", str(tmp_path), "--config", str(loose)]) == 0
    out = capsys.readouterr().out
    assert "ruler ±5" in out and not re.search(r"^table2_ruler\s+outside", out, re.M)
    assert cli.main(["compare", str(tmp_path / "empty")]) == 2
    (tmp_path / "empty").mkdir()
    assert cli.main(["compare", str(tmp_path / "empty")]) == 2
    assert "no *.comparison.csv" in capsys.readouterr().err
    # an unreadable comparison file fails a strict check too
    write(tmp_path / "broken/table1_longbench.comparison.csv", "a,b\n")
    assert cli.main(["compare", str(tmp_path / "broken")]) == 0
    assert cli.main(["compare", str(tmp_path / "broken"), "--strict"]) == 1


def test_compare_lists_the_targets_not_built_and_strict_fails_on_them(
    tmp_path: Path, capsys
) -> None:
    """A partly built directory: every paper target of the config without its comparison file
    is printed as not built (never left out), and --strict fails on them."""
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    config["report"] = {"tolerances": {"ruler": 5}}  # table2_ruler's one file: all inside
    loose = write(tmp_path / "loose.yaml", yaml.safe_dump(config))
    ruler_file(tmp_path)
    assert cli.main(["compare", str(tmp_path), "--config", str(loose)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^table2_ruler\s+inside", out, re.M)
    assert re.search(r"^table1_longbench\s+not built\s+0\s+0\s+0\s+0", out, re.M)
    assert re.search(r"^figure6_niah_ntk_llada_8b_base\s+not built", out, re.M)
    assert "figure4_rope_position_coverage" not in out  # no comparison file by design
    assert "extension_" not in out  # not part of `all`
    assert "table1_longbench.comparison.csv does not exist" in out
    assert cli.main(["compare", str(tmp_path), "--config", str(loose), "--strict"]) == 1
    # without a config the expected targets are unknown: said, not passed over in silence
    assert cli.main(["compare", str(tmp_path)]) == 0
    assert "pass --config" in capsys.readouterr().err


# --- the perplexity comparison ----------------------------------------------------------------


def model(key: str, label: str, family: str, variant: str) -> Model:
    return Model(key, label, family, variant, 4096, 5e5, 128, "float16")


def test_perplexity_comparison_matches_by_label_then_family() -> None:
    published = pd.DataFrame(
        {
            "model": ["LLaDA-8B-Base", "LLaDA-8B-Base", "LLaMA3-8B-Instruct"],
            "context_tokens": [64, 128, 64],
            "perplexity": [8.0, 7.0, 9.0],
        }
    )
    runs = [
        (
            model("llada_8b_base", "LLaDA-8B-Base", "llada", "base"),
            1.0,
            "a",
            [{"context_tokens": 64, "ppl": 8.4}],
        ),
        (
            model("llama_tiny_instruct", "LLaMA-tiny-Instruct", "ar", "instruct"),
            1.0,
            "b",
            [{"context_tokens": 64, "ppl": 900.0}],
        ),
        (
            model("llada_8b_base", "LLaDA-8B-Base", "llada", "base"),
            4.0,
            "c",
            [{"context_tokens": 64, "ppl": 8.1}],
        ),
    ]
    rows = ppl.comparison_rows(runs, published)
    by = [(r["label"], r["context_tokens"], r["published"], r["reproduced"]) for r in rows]
    assert by == [
        ("a", 64, 8.0, 8.4),
        ("a", 128, 7.0, None),  # the paper's longer curve: missing on our side
        ("b", 64, 9.0, 900.0),
        ("c", 64, None, 8.1),  # λ 4: Figure 1a has no such curve
    ]
    assert rows[0]["relative_difference"] == pytest.approx(0.05)
    assert rows[2]["note"] == ppl.NOTE_BY_FAMILY and rows[2]["published_model"] == (
        "LLaMA3-8B-Instruct"
    )
    assert rows[3]["note"] == ppl.NOTE_NOT_PUBLISHED


# --- run facts and the report -----------------------------------------------------------------


def demo_study() -> Study:
    return Study.from_file(ROOT / "config/demo.yaml")


def fake_scores(root: Path, study: Study) -> Path:
    """A scores.json of the first RULER run of Table 2, with two generation records."""
    run = study.targets["table2_ruler"].runs[0]
    record = {
        "model": {"demo": {"layers": 2}, "revision": None, "commit_sha": "abc123def4567890"},
        "rope": {"ntk_lambda": 1.0},
        "settings": {"applied": {"steps": 8}, "dtype": "float32"},
        "seed": 2025,
        "packages": {"torch": "2.13.0", "opencompass": "0.5.4"},
        "device": {"host": "h", "cuda": False},
    }
    scores = {
        "benchmark": "ruler",
        "model": run.model,
        "setting": run.setting,
        "sample_limit": 2,
        "n_samples": 13,
        "n_full": 26,
        "provenance": {"generation": [record, {**record, "device": {"gpu": "NVIDIA H200"}}]},
    }
    path = write(root / run.directory / "scores.json", json.dumps(scores))
    unit = study.run_units(run)[0]
    bench = root / "benchmarks" / "ruler" / run.model / run.setting / f"{unit}.tsv"
    write(bench, "s\th:m:s\tmax_rss\n12.5\t0:00:12\t100\n")
    return path


def test_run_facts_read_provenance_and_benchmark_files(tmp_path: Path) -> None:
    study = demo_study()
    fake_scores(tmp_path, study)
    run = study.targets["table2_ruler"].runs[0]
    facts = rf.run_facts(study, run, tmp_path)
    assert facts.status == "done" and facts.model_id == f"demo:{run.model}"
    assert facts.commits == ["abc123def4567890"] and facts.seed == 2025
    assert facts.sampler == {"steps": 8} and facts.dtype == "float32"
    assert facts.devices == ["cpu", "NVIDIA H200"]
    assert facts.packages == {"torch": "2.13.0", "opencompass": "0.5.4"}
    assert facts.gpu_seconds == 12.5 and facts.jobs_timed == 1 < facts.jobs
    assert facts.limited and facts.estimate_hours > 0
    other = study.targets["table2_ruler"].runs[1]
    assert rf.run_facts(study, other, tmp_path).status == "not run"


def test_report_builds_with_targets_missing_and_says_so(tmp_path: Path) -> None:
    study = demo_study()
    fake_scores(tmp_path, study)
    ruler_file(tmp_path)
    write(tmp_path / "paper_figures/table2_ruler.md", "# Table 2 (RULER)\n\n| a |\n|--:|\n| 1 |\n")
    # a PNG for Figure 4 (analytic: no comparison by design)
    png = bytes.fromhex("89504e470d0a1a0a") + b"fake"
    (tmp_path / "paper_figures/figure4_rope_position_coverage.png").write_bytes(png)
    report = rp.build_report(study, tmp_path, "config/demo.yaml")
    names = [s.target.name for s in report.sections]
    assert names == [t.name for t in study.paper_targets()]
    assert report.banner and "demo models" in report.banner
    md = rp.to_markdown(report)
    assert "> **Limited run: tiny random-weight demo models" in md
    # the comparison is there, the .csv and .tex are not: verdicts, and "partly built"
    assert re.search(
        r"^\| table2_ruler \| outside \(partly built\) \| 2 \| 1 \| 1 \| 1 \|$", md, re.M
    )
    assert re.search(r"^\| table1_longbench \| not built \|(\s+\|){4}$", md, re.M)
    assert "`paper_figures/table1_longbench.comparison.csv`" in md  # named as not built yet
    assert "| LLaDA-8B-Base λ=1 4k QA | 40.0 | 42.5 | 2.5 | outside |" in md
    assert "abc123def456" in md and "12 s" in md  # the run's commit and GPU time
    assert "![figure4_rope_position_coverage](figure4_rope_position_coverage.png)" in md
    assert "## Known differences from the paper" in md
    html = rp.to_html(report)
    assert "data:image/png;base64," in html
    assert not re.search(r"(src|href)=\"https?:", html)  # self-contained
    assert '<div class="banner">' in html
    md_path, html_path = tmp_path / "r.md", tmp_path / "r.html"
    rp.write_report(study, md_path, html_path, tmp_path)
    assert md_path.read_text() == rp.to_markdown(rp.build_report(study, tmp_path))


def test_known_differences_name_real_options_and_targets() -> None:
    study = Study.from_file(ROOT / "config/paper.yaml")
    schema = (ROOT / "workflow/schemas/config.schema.yaml").read_text()
    entries = rp.load_package_yaml("known_differences.yaml")
    assert entries and len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        assert e["what"].strip()
        targets = e["targets"]
        assert targets == "all" or set(targets) <= set(study.targets) | {"all"}, e["id"]
        if e.get("option"):
            leaf = e["option"].split(".")[-1]
            assert re.search(rf"^\s+{re.escape(leaf)}:", schema, re.M), e["option"]
    claims = rp.load_package_yaml("paper_claims.yaml")
    assert set(claims) == {t.name for t in study.paper_targets()}


def test_published_rows_no_run_was_compared_with_are_listed(tmp_path: Path, capsys) -> None:
    comparison = ruler_file(tmp_path)
    published = write(
        tmp_path / "config/published/table2_ruler.csv",
        "model,ntk_lambda,context,NIAH,AGG,QA,Avg\n"
        "LLaDA-8B-Base,1,4k,90,50,40,60\n"
        "LLaDA-8B-Base,1.0,16k,1,2,10,4\n"  # compared (λ written another way)
        "Mystery-Model,4,8k,1,2,3,2\n",  # a row of no run
    )
    result = read_comparison(comparison, "table2_ruler", "ruler_table", [published])
    assert result.uncompared == ["Mystery-Model λ=4 8k"]
    assert "1 published rows not compared: Mystery-Model λ=4 8k" in format_table(
        [result], Tolerances(), "none"
    )
    gone = read_comparison(comparison, "table2_ruler", "ruler_table", [tmp_path / "nope.csv"])
    assert gone.cells and "cannot read the published rows" in gone.problems[0]
    # the report says so in the target's section, and builds the rest
    study = demo_study()
    config = copy.deepcopy(study.config)
    config["targets"]["table2_ruler"]["published"] = "config/published/table2_ruler.csv"
    report = rp.build_report(Study(config), tmp_path)
    md = rp.to_markdown(report)
    assert "- 1 published rows no run of ours was compared with: Mystery-Model λ=4 8k" in md
    assert "## table4_ruler_dream" in md


def test_only_a_targets_own_published_file_lists_uncompared_rows() -> None:
    # Table 3 takes its LLaMA3 rows from Table 1's file: Table 1's LLaDA rows are not Table 3's
    target = Study.from_file(ROOT / "config/paper.yaml").targets["table3_longbench_dream"]
    assert rp.published_files(target, Path("/r")) == [
        Path("/r/config/published/table3_longbench_dream.csv")
    ]
