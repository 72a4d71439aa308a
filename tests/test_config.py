"""The study config: schema errors that name the key, run expansion, run ids, sharing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from longllada.config import ConfigError, Study

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return yaml.safe_load((ROOT / "config/paper.yaml").read_text())


@pytest.fixture(scope="module")
def paper(paper_config: dict) -> Study:
    return Study(copy.deepcopy(paper_config))


def lambdas(study: Study, target: str, model: str) -> list[float]:
    return sorted({r.ntk_lambda for r in study.targets[target].runs if r.model == model})


def test_paper_models_and_targets(paper: Study) -> None:
    assert set(paper.models) == {
        "llama3_8b_base",
        "llama3_8b_instruct",
        "llada_8b_base",
        "llada_8b_instruct",
        "llada_1_5",
        "dream_v0_base",
        "dream_v0_instruct",
    }
    figures = {n.split("_")[0] for n in paper.targets}
    assert figures == {f"figure{i}" for i in ["1a", "1b", *range(2, 12)]} | {
        f"table{i}" for i in range(1, 5)
    }


def test_paper_lambdas(paper: Study) -> None:
    assert lambdas(paper, "figure6_niah_ntk_llada_8b_base", "llada_8b_base") == [4, 14, 31, 55]
    assert lambdas(paper, "figure8_niah_ntk_llada_1_5", "llada_1_5") == [1, 4, 14, 31]
    assert lambdas(paper, "table2_ruler", "llada_1_5") == [1, 4, 14, 31]
    assert lambdas(paper, "table2_ruler", "llama3_8b_instruct") == [1, 4, 13]
    assert lambdas(paper, "table1_longbench", "llada_8b_base") == [1, 4]


def test_run_ids(paper: Study) -> None:
    settings = {r.setting for r in paper.targets["figure3_niah_steps_llada_8b_base"].runs}
    assert settings == {"ntk1_s1_b32", "ntk1_s4_b32", "ntk1_s8_b32", "ntk1_s16_b32"}
    fig6 = {r.directory for r in paper.targets["figure6_niah_ntk_llada_8b_base"].runs}
    assert "results/niah/llada_8b_base/ntk14_s32_b32" in fig6
    dream = {r.setting for r in paper.targets["figure9_niah_dream"].runs}
    assert dream == {"ntk1_s32"}  # entropy, temperature 0.2, top_p 0.95 are the paper's
    llama = paper.targets["figure2_niah_direct_extrapolation"].runs
    assert {r.setting for r in llama if r.family == "ar"} == {"ntk1"}
    lb = {r.setting for r in paper.targets["table1_longbench"].runs if r.family == "llada"}
    assert lb == {"ntk1_sgen_b64", "ntk4_sgen_b64"}


def test_shared_runs_are_one_run(paper: Study) -> None:
    fig1b = set(paper.targets["figure1b_niah_by_length"].runs)
    fig2 = set(paper.targets["figure2_niah_direct_extrapolation"].runs)
    assert fig1b == fig2
    t1 = {r for r in paper.targets["table1_longbench"].runs if r.family == "ar"}
    t3 = {r for r in paper.targets["table3_longbench_dream"].runs if r.family == "ar"}
    assert t1 == t3
    # figure 3's 32-step run is figure 2's; figure 8's λ=1 run is figure 11's 32-step sibling
    all_runs = [r for t in paper.targets.values() for r in t.runs]
    assert len(paper.runs) == len(set(all_runs)) == 66


def test_unit_files(paper: Study) -> None:
    run = paper.run_for("niah", "llada_8b_base", "ntk14_s32_b32")
    assert paper.prediction_files(run)[3] == (
        "results/niah/llada_8b_base/ntk14_s32_b32/len16000.predictions.jsonl"
    )
    assert paper.result_files(run) == ["results/niah/llada_8b_base/ntk14_s32_b32/scores.json"]
    ppl = paper.targets["figure1a_perplexity"].runs
    files = {f for r in ppl for f in paper.result_files(r)}
    assert "results/ppl/llada_8b_base/ntk1/mc8_chunk64.json" in files
    assert "results/ppl/llama3_8b_base/ntk1/causal_chunk64.json" in files
    ruler = paper.run_for("ruler", "llama3_8b_base", "ntk13")
    assert len(paper.prediction_files(ruler)) == 3 * 13


def test_checkpoints(paper: Study) -> None:
    assert paper.checkpoint("llada_8b_base") == "results/checkpoints/llada_8b_base/download.json"
    assert paper.checkpoint("llada_8b_base", 14) == (
        "results/checkpoints/llada_8b_base/ntk14/rope_patch.json"
    )
    assert paper.patches[("llada_8b_base", 14.0)].t_target == 16384
    assert len(paper.all_checkpoints()) == 7 + 4 + 4 + 3 + 2 + 2


def test_demo_config_is_valid() -> None:
    demo = Study.from_file(ROOT / "config/demo.yaml")
    assert all(m.source == "demo" for m in demo.models.values())
    assert set(demo.targets) <= set(Study.from_file(ROOT / "config/paper.yaml").targets)


def _broken(paper_config: dict, edit) -> dict:
    cfg = copy.deepcopy(paper_config)
    edit(cfg)
    return cfg


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(sede=1), r"\(top level\): Additional properties.*'sede'"),
        (
            lambda c: c["models"]["llada_8b_base"].update(t_train="4k"),
            r"models\.llada_8b_base\.t_train: '4k' is not of type 'integer'",
        ),
        (
            lambda c: c["models"]["llada_8b_base"].update(dtype="fp8"),
            r"models\.llada_8b_base\.dtype: 'fp8' is not one of",
        ),
        (
            lambda c: c["models"]["llada_8b_base"].update(rope_scaling=2),
            r"models\.llada_8b_base: Additional properties.*'rope_scaling'",
        ),
        (
            lambda c: c["targets"]["figure6_niah_ntk_llada_8b_base"]["runs"][0].update(
                ntk=[4, 0.5]
            ),
            r"targets\.figure6_niah_ntk_llada_8b_base\.runs\[0\]\.ntk\[1\]: 0\.5 is not valid: "
            r".*less than the minimum of 1",
        ),
        (
            lambda c: c["targets"]["figure9_niah_dream"]["runs"][0].update(
                models=["dream_v0_base", "dream_v1"]
            ),
            r"targets\.figure9_niah_dream\.runs\[0\]\.models\[1\]: model 'dream_v1' is not "
            r"defined under models",
        ),
        (
            lambda c: c["targets"]["figure4_rope_position_coverage"].update(models=["llama4"]),
            r"targets\.figure4_rope_position_coverage\.models\[0\]: model 'llama4'",
        ),
        (
            lambda c: c["targets"]["figure9_niah_dream"]["runs"][0].update(
                sampler={"alg": "greedy"}
            ),
            r"targets\.figure9_niah_dream\.runs\[0\]\.sampler\.alg: 'greedy' is not one of",
        ),
        (
            lambda c: c["targets"]["figure9_niah_dream"]["runs"][0].update(
                sampler={"steps": [32, -1]}
            ),
            r"sampler\.steps: -1 is not a positive integer",
        ),
        (
            lambda c: c["models"]["llada_8b_base"].pop("revision"),
            r"models\.llada_8b_base\.revision: required with hub_id",
        ),
        (
            lambda c: c["models"]["llada_8b_base"].update(local_dir="/ckpt"),
            r"models\.llada_8b_base: give exactly one of hub_id, local_dir, demo",
        ),
        (
            lambda c: c["targets"]["table1_longbench"]["runs"][0].update(benchmark="niah"),
            r"targets\.table1_longbench\.runs\[0\]\.benchmark: a longbench_table target cannot "
            r"use 'niah'",
        ),
        (
            lambda c: c["benchmarks"]["niah"].update(depths=[0, 110]),
            r"benchmarks\.niah\.depths\[1\]: 110 is greater than the maximum of 100",
        ),
        (lambda c: c.pop("targets"), r"'targets' is a required property"),
    ],
)
def test_bad_configs_name_the_key(paper_config: dict, edit, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Study(_broken(paper_config, edit))
