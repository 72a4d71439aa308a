"""LongBench's stages: data check, prompts by OpenCompass's own dataset classes and templates,
the join of sharded answers and the score rule.

The OpenCompass tests are skipped when LONGLLADA_OPENCOMPASS_PYTHON is unset; the prompts of all
21 subsets are built in one OpenCompass process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from longllada import benchmark_data, data_sources, opencompass_env, prose
from longllada.benchmarks import longbench, longbench_data
from longllada.files import sha256_file
from longllada.jobs import read_jsonl

PYTHON = os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON")
needs_oc = pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")
ESSAYS = [text for _name, text in prose.paul_graham_essays()]


def _checked(directory: Path, tmp: Path, subsets=tuple(longbench.SUBSETS)) -> Path:
    manifest = tmp / "manifest.json"
    files = tuple(f"{s}.jsonl" for s in subsets)
    benchmark_data.write_manifest(manifest, benchmark_data.check_local_files(directory, files))
    return manifest


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return longbench_data.write_demo_data(tmp_path_factory.mktemp("lb") / "data", ESSAYS, 3)


# --- bad input, named before OpenCompass starts ---------------------------------------------


def test_a_subset_missing_from_the_data_is_named(demo: Path, tmp_path: Path) -> None:
    partial = tmp_path / "data"
    partial.mkdir()
    (partial / "trec.jsonl").write_bytes((demo / "trec.jsonl").read_bytes())
    files = data_sources.files_of("longbench", {"subsets": ["trec", "lcc"]})
    with pytest.raises(benchmark_data.DataError, match="lcc.jsonl"):
        data_sources.prepare("longbench", str(partial), files, tmp_path / "manifest.json")
    assert not (tmp_path / "manifest.json").exists()


def test_a_malformed_line_is_named_by_file_and_line(demo: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = (demo / "qasper.jsonl").read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:-5]  # a cut line
    (data / "qasper.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = _checked(data, tmp_path, ("qasper",))
    out = tmp_path / "prompts/qasper.jsonl"
    with pytest.raises(longbench_data.LongBenchDataError, match=r"qasper\.jsonl:2"):
        longbench.make_prompts(manifest, "qasper", out, tmp_path / "m.json", {"python": "/no"})
    assert not out.exists()


def test_a_data_file_edited_after_the_check_is_refused(demo: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "lcc.jsonl").write_bytes((demo / "lcc.jsonl").read_bytes())
    manifest = _checked(data, tmp_path, ("lcc",))
    with open(data / "lcc.jsonl", "a", encoding="utf-8") as f:
        f.write("\n")
    with pytest.raises(longbench_data.LongBenchDataError, match="changed after the data check"):
        longbench.make_prompts(manifest, "lcc", tmp_path / "p.jsonl", tmp_path / "m.json", {})


def test_unknown_subset_and_unit() -> None:
    with pytest.raises(ValueError, match="qasper_e"):
        longbench.make_prompts("unused", "qasper_e", "p", "m", {})
    assert longbench.split_unit("8k_repobench-p.samples0-250") == ("8k", "repobench-p")
    with pytest.raises(ValueError, match="'bogus'"):
        longbench.split_unit("4k_bogus")


# --- prompts: OpenCompass's dataset classes and templates, all 21 subsets ------------------


@pytest.fixture(scope="module")
def prepared() -> dict:
    return opencompass_env.prepare(PYTHON)


@pytest.fixture(scope="module")
def built(demo: Path, prepared: dict, tmp_path_factory) -> dict[str, tuple[list, dict]]:
    """Every subset's prompts from the demo data, in one OpenCompass process."""
    out = tmp_path_factory.mktemp("prompts")
    jobs = [
        {
            "data_file": str(demo / f"{s}.jsonl"),
            "subset": s,
            "out": str(out / f"{s}.jsonl"),
            "params_out": str(out / f"{s}.params.json"),
        }
        for s in longbench.SUBSETS
    ]
    spec = out / "spec.json"
    spec.write_text(json.dumps(jobs), encoding="utf-8")
    res = opencompass_env.run_script(prepared, longbench.PROMPTER, spec, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return {
        s: (
            list(read_jsonl(out / f"{s}.jsonl")),
            json.loads((out / f"{s}.params.json").read_text(encoding="utf-8")),
        )
        for s in longbench.SUBSETS
    }


@pytest.fixture(scope="module")
def facts(prepared: dict) -> dict:
    return longbench.subset_facts(prepared)


@needs_oc
def test_prompts_are_the_configs_templates_filled_from_the_record(
    built: dict, facts: dict, demo: Path
) -> None:
    """OpenCompass's PromptTemplate on its dataset class's row equals the config's HUMAN
    template filled from the jsonl record, for all 21 subsets; output lengths equal the configs'
    max_out_len and SUBSETS."""
    for subset, (rows, params) in built.items():
        records = longbench_data.read_subset(demo / f"{subset}.jsonl", subset)
        assert len(rows) == len(records) == 3
        template = facts[subset]["template"]
        for i, (row, record) in enumerate(zip(rows, records, strict=True)):
            assert row["id"] == f"{subset}_{i:04d}" and row["_id"] == record["_id"]
            assert row["prompt"] == longbench_data.fill_template(template, record), subset
            assert row["answers"] == record["answers"]
            assert row["all_classes"] == record["all_classes"]
            assert row["max_out_len"] == facts[subset]["max_out_len"]
            empty = {"input": "", "context": ""}  # what a budget must at least hold
            assert row["template_prompt"] == longbench_data.fill_template(template, empty)
        assert params["max_out_len"] == longbench.SUBSETS[subset].max_new_tokens
        assert params["abbr"] == facts[subset]["abbr"]
        assert params["dataset_class"] == facts[subset]["dataset_class"]
    # the placeholders are gone; the Chinese and code subsets keep their text
    assert "{context}" not in built["lcc"][0][0]["prompt"]
    assert "阅读以下文字" in built["multifieldqa_zh"][0][0]["prompt"]


@needs_oc
def test_make_prompts_records_where_the_prompts_came_from(
    demo: Path, prepared: dict, tmp_path: Path
) -> None:
    manifest = _checked(demo, tmp_path)
    out, meta_out = tmp_path / "p/trec.jsonl", tmp_path / "p/trec.meta.json"
    meta = longbench.make_prompts(manifest, "trec", out, meta_out, prepared)
    assert json.loads(meta_out.read_text()) == meta
    assert meta["rows"] == 3 and meta["category"] == "ICL"
    assert meta["data"]["sha256"] == sha256_file(demo / "trec.jsonl")
    assert meta["opencompass_entry"]["output_column"] == "all_labels"
    assert meta["opencompass"] and meta["cl100k_sha256"]


# --- the join of shards and the score rule ---------------------------------------------------


def _prompt_file(path: Path, subset: str, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            row = {
                "id": f"{subset}_{i:04d}",
                "subset": subset,
                "index": i,
                "prompt": "p",
                "answers": [f"answer {i}"],
                "all_classes": None,
            }
            f.write(json.dumps(row) + "\n")
    return path


def _answers(path: Path, subset: str, ids: range, right: bool = True) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for i in ids:
            pred = f"answer {i}" if right else "nothing"
            row = {"id": f"{subset}_{i:04d}", "prediction": pred, "prompt_tokens": 10}
            row |= {"prompt_tokens_before_truncation": 30, "truncated": True}
            f.write(json.dumps(row) + "\n")
    return path


def test_shards_join_per_context_and_gaps_are_named(tmp_path: Path) -> None:
    prompts = _prompt_file(tmp_path / "qasper.jsonl", "qasper", 4)
    a = _answers(tmp_path / "4k_qasper.samples0-2.predictions.jsonl", "qasper", range(0, 2))
    b = _answers(tmp_path / "4k_qasper.samples2-4.predictions.jsonl", "qasper", range(2, 4))
    c = _answers(tmp_path / "8k_qasper.samples0-4.predictions.jsonl", "qasper", range(4))
    rows = longbench.join_predictions([prompts], [a, b, c], {"4k": 3500, "8k": 7500}, None)
    assert [r["id"] for r in rows][:2] == ["4k_qasper_0000", "4k_qasper_0001"]
    assert len(rows) == 8 and {r["budget"] for r in rows} == {3500, 7500}
    with pytest.raises(ValueError, match=r"predictions of 4k_qasper .* 2 prompt\(s\) without"):
        longbench.join_predictions([prompts], [a, c], {"4k": 3500, "8k": 7500}, None)
    limited = longbench.join_predictions([prompts], [a], {"4k": 3500}, 2)
    assert len(limited) == 2


@needs_oc
def test_score_run_scores_each_context_and_subset(tmp_path: Path, prepared: dict) -> None:
    prompts = [
        _prompt_file(tmp_path / "qasper.jsonl", "qasper", 2),
        _prompt_file(tmp_path / "hotpotqa.jsonl", "hotpotqa", 2),
    ]
    preds = [
        _answers(tmp_path / "4k_qasper.samples0-1.predictions.jsonl", "qasper", range(1)),
        _answers(tmp_path / "4k_qasper.samples1-2.predictions.jsonl", "qasper", range(1, 2)),
        _answers(
            tmp_path / "4k_hotpotqa.samples0-2.predictions.jsonl", "hotpotqa", range(2), False
        ),
    ]
    info = {
        "model": "m",
        "setting": "ntk1",
        "family": "ar",
        "ntk_lambda": 1.0,
        "sampler": {},
        "sample_limit": None,
        "contexts": {"4k": 3500},
    }
    out = tmp_path / "scores.json"
    result = longbench.score_run(prompts, preds, [], out, info, prepared)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    by = {s["subset"]: s for s in result["subsets"]}
    assert by["qasper"]["score"] == 100.0 and by["hotpotqa"]["score"] == 0.0
    assert by["qasper"]["n"] == 2 and by["qasper"]["truncated"] == 2
    assert by["qasper"]["category"] == "SD" and by["hotpotqa"]["category"] == "MD"
    assert result["n_samples"] == result["n_full"] == 4
    assert all(s["detail"]["evaluator"] == "LongBenchF1Evaluator" for s in result["samples"])
