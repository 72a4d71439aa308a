"""The study config: schema errors that name the key, run expansion, run ids, sharing."""

from __future__ import annotations

import copy
import random
import re
from pathlib import Path

import pytest
import yaml

from longllada import rope
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
    figures = {t.name.split("_")[0] for t in paper.paper_targets()}
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
    all_runs = [r for t in paper.paper_targets() for r in t.runs]
    assert len(paper.paper_runs()) == len(set(all_runs)) == 66
    # the extensions add 9 NIAH runs (their diffusion-aware λ 4 is Figure 6's run) and 4
    # RULER runs (Dream λ 5 twice; diffusion-aware λ 13 and 27, its λ 4 is Table 2's) and 2
    # LongBench runs (Dream Base and Instruct at λ 5)
    assert len(paper.runs) == 66 + 9 + 4 + 2


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


# --- config-time checks: strict YAML, labels, λ, sampler constraints -------------------------

DEMO_TEXT = (ROOT / "config/demo.yaml").read_text()
DUPLICATE_BLOCK = """  llada_tiny_base:
    label: LLaDA-tiny-Base-2
    family: llada
    variant: base
    demo: {preset: tiny, seed: 9}
    t_train: 256
    rope_theta: 10000
    head_dim: 16
    dtype: float32
"""


def _line_of(text: str, needle: str, nth: int = 0) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith(needle)]
    return lines[nth]


def test_duplicate_model_block_names_file_line_and_column(tmp_path: Path) -> None:
    text = DEMO_TEXT.replace("\nbenchmarks:\n", "\n" + DUPLICATE_BLOCK + "\nbenchmarks:\n")
    path = tmp_path / "x.yaml"
    path.write_text(text)
    first, second = _line_of(text, "  llada_tiny_base:"), _line_of(text, "  llada_tiny_base:", 1)
    message = (
        f"{path}:{second}:3: duplicate key 'llada_tiny_base' under models (first at line {first})"
    )
    with pytest.raises(ConfigError) as err:
        Study.from_file(path)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("seed: 2025\n", "seed: 2025\nseed: 7\n", "at the top level"),
        (
            "llada: {steps: 8, block_length: 8}",
            "llada: {steps: 8, block_length: 8, steps: 4}",
            "under benchmarks.niah.sampler.llada",
        ),
        (
            "        models: [llada_tiny_base]\n        sampler: {steps: [1, 4]}\n",
            "        models: [llada_tiny_base]\n        models: [llama_tiny_base]\n"
            "        sampler: {steps: [1, 4]}\n",
            r"under targets.figure3_niah_steps_llada_8b_base.runs\[0\]",
        ),
    ],
)
def test_duplicate_keys_anywhere(tmp_path: Path, old: str, new: str, where: str) -> None:
    assert old in DEMO_TEXT
    path = tmp_path / "x.yaml"
    path.write_text(DEMO_TEXT.replace(old, new, 1))
    with pytest.raises(ConfigError, match=rf"^{path}:\d+:\d+: duplicate key '\w+' {where} "):
        Study.from_file(path)


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    from longllada.yaml_config import load_config

    path = tmp_path / "m.yaml"
    path.write_text("base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\n")
    assert load_config(path) == {"base": {"a": 1, "b": 2}, "other": {"a": 1, "b": 3}}


@pytest.mark.parametrize(
    ("text", "line", "col", "problem"),
    [
        ("seed: 2025\nmodels:\n  a: [1, 2\nbenchmarks: {}\n", 4, 11, "expected ',' or ']'"),
        ("seed: 2025\nmodels: {\n", 3, 1, "expected the node content, but found '<stream end>'"),
        ("seed: 2025\n  models: 1\n", 2, 9, "mapping values are not allowed here"),
        ('seed: "2025\n', 2, 1, "found unexpected end of stream"),
    ],
)
def test_yaml_syntax_error_names_file_line_and_column(
    tmp_path: Path, capsys, text: str, line: int, col: int, problem: str
) -> None:
    from longllada.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"^{path}:{line}:{col}: .*{re.escape(problem)}"):
        Study.from_file(path)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"longllada validate: {path}:{line}:{col}: ")
    assert "Traceback" not in err


def test_config_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    with pytest.raises(ConfigError, match=rf"^{path}: .*mapping"):
        Study.from_file(path)


@pytest.mark.parametrize(
    ("target", "first", "second"),
    [
        ("figure2_niah_direct_extrapolation", "llada_8b_base", "llada_8b_instruct"),
        ("figure4_rope_position_coverage", "llada_8b_base", "llama3_8b_base"),
    ],
)
def test_same_label_in_one_target(paper_config: dict, target: str, first: str, second: str) -> None:
    def edit(c: dict) -> None:
        c["models"][second]["label"] = c["models"][first]["label"]
        c["targets"] = {target: c["targets"][target]}

    with pytest.raises(
        ConfigError,
        match=rf"targets\.{target}: models '{first}' and '{second}' have the same label",
    ):
        Study(_broken(paper_config, edit))


def test_same_label_in_different_targets_is_fine(paper_config: dict) -> None:
    # Dream base and LLaDA-1.5 never share a target.
    def edit(c: dict) -> None:
        c["models"]["dream_v0_base"]["label"] = c["models"]["llada_1_5"]["label"]

    Study(_broken(paper_config, edit))


FIG6 = r"targets\.figure6_niah_ntk_llada_8b_base\.runs\[0\]\.ntk\[1\]"


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 1e300, 1e6 + 1, float("-inf")])
def test_non_finite_or_huge_lambda(paper_config: dict, bad: float) -> None:
    def edit(c: dict) -> None:
        c["targets"]["figure6_niah_ntk_llada_8b_base"]["runs"][0]["ntk"] = [4, bad]

    with pytest.raises(ConfigError, match=FIG6):
        Study(_broken(paper_config, edit))


def test_nan_lambda_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text(DEMO_TEXT.replace("ntk: [1, {target: 2048}]", "ntk: [1, .nan]"))
    with pytest.raises(ConfigError, match=r"targets\.table2_ruler\.runs\[0\]\.ntk\[1\]: .*nan"):
        Study.from_file(path)


def test_lambda_from_a_huge_target_length(paper_config: dict) -> None:
    def edit(c: dict) -> None:
        c["targets"]["figure6_niah_ntk_llada_8b_base"]["runs"][0]["ntk"] = [4, {"target": 10**15}]

    with pytest.raises(ConfigError, match=FIG6 + r": .*above the maximum"):
        Study(_broken(paper_config, edit))


def test_largest_lambda_is_accepted(paper_config: dict) -> None:
    def edit(c: dict) -> None:
        c["targets"]["figure6_niah_ntk_llada_8b_base"]["runs"][0]["ntk"] = [4, 1e6]

    study = Study(_broken(paper_config, edit))
    assert study.checkpoint("llada_8b_base", 1e6).endswith("/ntk1000000/rope_patch.json")


ROUND_TRIP = [
    1,
    4.0,
    2.5,
    14,
    3.14159265358979,
    1.0000000000000002,
    1.1,
    123456.789,
    999999.9999999999,
    1e6,
    2.0000001,
    17.25,
]


@pytest.mark.parametrize("lam", ROUND_TRIP)
def test_lambda_text_round_trips(lam: float) -> None:
    text = rope.format_lambda(lam)
    assert re.fullmatch(NTK_WILDCARD, text)
    assert float(text) == lam
    assert rope.parse_lambda(text) == lam
    assert "e" not in text.lower()


def test_lambda_text_round_trips_random() -> None:
    rng = random.Random(0)
    values = [rng.uniform(1, 1e6) for _ in range(2000)] + [1 + rng.random() for _ in range(2000)]
    values += [float(rng.randint(1, 10**6)) for _ in range(500)]
    for lam in values:
        text = rope.format_lambda(lam)
        assert re.fullmatch(NTK_WILDCARD, text), text
        assert float(text) == lam, text


def test_lambda_text_as_today() -> None:
    assert [rope.format_lambda(x) for x in (4.0, 4, 2.5, 1, 55.0)] == ["4", "4", "2.5", "1", "55"]
    with pytest.raises(ValueError):
        rope.parse_lambda("1e3")
    with pytest.raises(ValueError):
        rope.format_lambda(float("nan"))


@pytest.mark.parametrize("lam", [3.14159265358979, 2.5, 4, 1.0000000000000002])
def test_many_digit_lambda_run_and_checkpoint(lam: float) -> None:
    cfg = yaml.safe_load(DEMO_TEXT)
    cfg["targets"]["figure6_niah_ntk_llada_8b_base"]["runs"][0]["ntk"] = [lam]
    study = Study(cfg)
    (run,) = study.targets["figure6_niah_ntk_llada_8b_base"].runs
    assert run.ntk_lambda == lam
    assert re.fullmatch(SETTING_WILDCARD, run.setting)
    assert (
        study.run_for("niah", "llada_tiny_base", run.setting)
        is study.runs[("niah", "llada_tiny_base", run.setting)]
    )
    text = run.setting.split("_")[0].removeprefix("ntk")
    assert float(text) == lam
    checkpoint = study.checkpoint("llada_tiny_base", lam)
    assert checkpoint == f"results/checkpoints/llada_tiny_base/ntk{text}/rope_patch.json"
    # the rope_patch rule's params: study.patches[(w.model, float(w.ntk))]
    ntk = re.fullmatch(r"results/checkpoints/[a-z0-9_]+/ntk([0-9.]+)/rope_patch\.json", checkpoint)
    assert study.patches[("llada_tiny_base", float(ntk.group(1)))].ntk_lambda == lam
    assert checkpoint in study.all_checkpoints()


SETTING_WILDCARD = r"ntk[0-9.]+(_[a-z]+[0-9a-z.]*)*"  # workflow/rules/common.smk
NTK_WILDCARD = r"[0-9.]+"


def test_sampler_numbers_in_run_ids_round_trip(paper_config: dict) -> None:
    def edit(c: dict) -> None:
        c["targets"]["figure9_niah_dream"]["runs"][0]["sampler"] = {
            "temperature": [0.00001, 0.1234567, 0.1234568]
        }

    study = Study(_broken(paper_config, edit))
    settings = sorted({r.setting for r in study.targets["figure9_niah_dream"].runs})
    assert settings == ["ntk1_s32_t0.00001", "ntk1_s32_t0.1234567", "ntk1_s32_t0.1234568"]
    assert all(re.fullmatch(SETTING_WILDCARD, s) for s in settings)


def _niah_steps(c: dict, steps, max_new_tokens: int) -> None:
    c["benchmarks"]["niah"]["max_new_tokens"] = max_new_tokens
    c["targets"] = {
        "figure3_niah_steps_llada_8b_base": c["targets"]["figure3_niah_steps_llada_8b_base"]
    }
    c["targets"]["figure3_niah_steps_llada_8b_base"]["runs"][0]["sampler"] = {"steps": steps}


@pytest.mark.parametrize(
    ("steps", "max_new_tokens", "ok"),
    [
        ([1, 4, 8, 16], 32, True),  # the paper: one block of 32
        ([3, 6], 96, True),  # 3 blocks
        ([4], 96, False),  # 4 steps over 3 blocks
        ([2], 40, True),  # 40 -> 64 tokens, 2 blocks
        ([3], 40, False),
        ([100], 40, True),  # capped at the 64 generated tokens
    ],
)
def test_llada_steps_split_over_blocks_niah(paper_config: dict, steps, max_new_tokens, ok) -> None:
    cfg = _broken(paper_config, lambda c: _niah_steps(c, steps, max_new_tokens))
    if ok:
        Study(cfg)
        return
    with pytest.raises(
        ConfigError,
        match=rf"targets\.figure3_niah_steps_llada_8b_base\.runs\[0\]\.sampler\.steps: "
        rf"{steps[0]} steps .*max_new_tokens {max_new_tokens}.* \d+ blocks of block_length 32",
    ):
        Study(cfg)


def test_llada_steps_split_over_blocks_ruler(paper_config: dict) -> None:
    def edit(c: dict) -> None:
        c["benchmarks"]["ruler"]["sampler"]["llada"] = {"steps": 30, "block_length": 16}

    with pytest.raises(
        ConfigError, match=r"targets\.table2_ruler\.runs\[0\]\.sampler\.steps: 30 steps .* 4 blocks"
    ):
        Study(_broken(paper_config, edit))


def test_llada_integer_steps_longbench(paper_config: dict) -> None:
    def edit(c: dict, steps: int) -> None:
        c["benchmarks"]["longbench"]["sampler"]["llada"] = {"steps": steps, "block_length": 64}

    Study(_broken(paper_config, lambda c: edit(c, 64)))  # 8 blocks at most (512 tokens)
    with pytest.raises(
        ConfigError,
        match=r"targets\.table1_longbench\.runs\[0\]\.sampler\.steps: 100 steps .*"
        r"longbench subset gov_report .*max_new_tokens 512.* 8 blocks",
    ):
        Study(_broken(paper_config, lambda c: edit(c, 100)))


def test_llada_config_check_agrees_with_the_sampler() -> None:
    torch = pytest.importorskip("torch")
    from longllada.config import llada_steps_problem
    from longllada.sampling import llada

    prompt = torch.zeros((1, 1), dtype=torch.long)
    for max_new in (1, 7, 32, 33, 40, 64, 96, 100, 512):
        for block in (1, 8, 16, 32, 64):
            for steps in (1, 2, 3, 4, 6, 8, 16, 32, 48, 64, 100, 512):
                gen = llada.official_gen_length(max_new, block)
                used = llada.StepsPolicy().steps_for(steps, gen)
                s = llada.LLaDASettings(steps=used, block_length=block)
                try:
                    llada._check_call(object(), prompt, gen, s)
                    sampler_ok = True
                except ValueError:
                    sampler_ok = False
                problem = llada_steps_problem(max_new, block, steps)
                assert (problem is None) == sampler_ok, (max_new, block, steps, problem)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["benchmarks"]["niah"]["sampler"]["dream"].update(block_length=32),
            r"benchmarks\.niah\.sampler\.dream\.block_length: not a dream sampler setting",
        ),
        (
            lambda c: c["benchmarks"]["ruler"]["sampler"]["llada"].update(top_p=0.9),
            r"benchmarks\.ruler\.sampler\.llada\.top_p: not a llada sampler setting",
        ),
        (
            lambda c: c["targets"]["figure9_niah_dream"]["runs"][0].update(sampler={"steps": True}),
            r"targets\.figure9_niah_dream\.runs\[0\]\.sampler\.steps: True is not a positive",
        ),
        (
            lambda c: c["benchmarks"]["niah"]["sampler"]["llada"].update(block_length=True),
            r"sampler\.block_length: must be a positive integer",
        ),
        (
            lambda c: c["targets"]["figure9_niah_dream"]["runs"][0].update(
                sampler={"temperature": float("inf")}
            ),
            r"targets\.figure9_niah_dream\.runs\[0\]\.sampler\.temperature: must be a finite",
        ),
        (
            lambda c: c["models"]["llada_8b_base"].update(rope_theta=float("nan")),
            r"models\.llada_8b_base\.rope_theta: nan is not a finite number",
        ),
    ],
)
def test_sampler_constraints_of_the_gpu_jobs(paper_config: dict, edit, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Study(_broken(paper_config, edit))


def test_tab_indented_json_config(tmp_path: Path) -> None:
    # Snakemake accepts JSON config files; YAML cannot read tab indentation, JSON can.
    from longllada.yaml_config import load_config

    path = tmp_path / "c.json"
    path.write_text('{\n\t"seed": 1,\n\t"models": {}\n}\n')
    assert load_config(path) == {"seed": 1, "models": {}}
    path.write_text('{\n\t"seed": 1,\n\t"seed": 2\n}\n')
    with pytest.raises(ConfigError, match=rf"^{path}: duplicate key 'seed' \(JSON\)"):
        load_config(path)


def test_dream_sampling_option_names_its_runs() -> None:
    """Dream's paper sampling (with the official argmax fallback) is the default; `clean` is a
    named option with a run of its own."""
    cfg = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    cfg["targets"]["figure9_niah_dream"]["runs"][0]["sampler"] = {"sampling": ["paper", "clean"]}
    runs = Study(cfg).targets["figure9_niah_dream"].runs
    assert [r.setting for r in runs if r.model == "dream_tiny_base"] == [
        "ntk1_s8",
        "ntk1_s8_smpclean",
    ]
    assert [dict(r.sampler)["sampling"] for r in runs] == ["paper", "clean"] * 2
    cfg["targets"]["figure9_niah_dream"]["runs"][0]["sampler"] = {"sampling": "greedy"}
    with pytest.raises(ConfigError, match=r"runs\[0\]\.sampler\.sampling: 'greedy' is not one"):
        Study(cfg)


def test_extension_targets_are_left_out_of_the_paper(paper: Study) -> None:
    ext = {t.name for t in paper.targets.values() if t.extension}
    assert ext == {
        "extension_niah_ntk_llama3_8b_base",
        "extension_niah_ntk_llama3_8b_instruct",
        "extension_niah_ntk_dream",
        "extension_niah_diffusion_aware_llada_8b_base",
        "extension_ruler_ntk_dream",
        "extension_ruler_diffusion_aware_llada_8b_base",
        "extension_longbench_ntk_dream",
    }
    assert not ext & {t.name for t in paper.paper_targets()}
    assert lambdas(paper, "extension_niah_ntk_llama3_8b_base", "llama3_8b_base") == [4, 13]
    assert lambdas(paper, "extension_niah_ntk_dream", "dream_v0_instruct") == [5]
    # UltraLLaDA's law (2x T_train and 2x T_target): below the paper's 4, 14, 31, 55 past 8K
    aware = lambdas(paper, "extension_niah_diffusion_aware_llada_8b_base", "llada_8b_base")
    assert aware == [4, 13, 27, 45]
    paper_files = {f for t in paper.paper_targets() for f in paper.target_inputs(t.name)}
    ext_files = {f for n in ext for f in paper.target_inputs(n)}
    assert "results/niah/llama3_8b_base/ntk13/scores.json" in ext_files - paper_files
    assert paper.run_tables() == ["paper_figures/niah_all_runs.csv"]
    assert "results/niah/llama3_8b_base/ntk13/scores.json" not in paper.benchmark_result_files(
        "niah"
    )


# --- RULER: shards, data, outputs ---------------------------------------------------------------


def test_ruler_jobs_are_split_into_sample_ranges(paper_config: dict) -> None:
    from longllada import budget

    study = Study(copy.deepcopy(paper_config))
    llada = study.run_for("ruler", "llada_8b_base", "ntk1_s64_b64")
    files = study.prediction_files(llada)
    # 64 steps over 16K tokens: ~1.7 GPU-hours a (task, length) job, over shard_minutes 60
    assert "results/ruler/llada_8b_base/ntk1_s64_b64/16k_vt.samples0-50.predictions.jsonl" in files
    assert (
        "results/ruler/llada_8b_base/ntk1_s64_b64/16k_vt.samples50-100.predictions.jsonl" in files
    )
    assert "results/ruler/llada_8b_base/ntk1_s64_b64/4k_vt.samples0-100.predictions.jsonl" in files
    llama = study.run_for("ruler", "llama3_8b_base", "ntk1")  # one cheap prefill a sample
    assert all(".samples0-100." in f for f in study.prediction_files(llama))
    for unit in study.units("ruler", "llada_8b_base"):
        ranges = budget.shards(study, llada, unit)
        assert ranges[0][0] == 0 and ranges[-1][1] == 100
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        # each shard's estimate within the limit (the unit's in the cost table stays whole)
        for first, stop in ranges:
            assert budget.unit_gpu_seconds(study, llada, f"{unit}.samples{first}-{stop}") <= 3600
    # no shard_minutes: one range; a sample limit: the range it selects
    c = copy.deepcopy(paper_config)
    del c["benchmarks"]["ruler"]["shard_minutes"]
    c["benchmarks"]["ruler"]["sample_limit"] = 7
    study = Study(c)
    run = study.run_for("ruler", "llada_8b_base", "ntk1_s64_b64")
    assert {f.split(".")[1] for f in study.prediction_files(run)} == {"samples0-7"}


def test_ruler_config_errors_name_the_key(paper_config: dict) -> None:
    def broken(edit) -> str:
        c = copy.deepcopy(paper_config)
        edit(c)
        with pytest.raises(ConfigError) as info:
            Study(c)
        return str(info.value)

    def no_data(c: dict) -> None:
        del c["data"]["ruler"]

    assert "data.ruler: required by the ruler runs" in broken(no_data)
    msg = broken(lambda c: c["benchmarks"]["ruler"]["tasks"].append("niah_single_9"))
    assert "benchmarks.ruler.tasks[13]: 'niah_single_9' is not one of" in msg
    msg = broken(lambda c: c["data"]["ruler"].pop("md5"))
    assert "data.ruler" in msg
    msg = broken(lambda c: c["benchmarks"]["ruler"]["contexts"].update({"32k": 0}))
    assert "benchmarks.ruler.contexts.32k: 0 is less than the minimum of 1" in msg


def test_ruler_table_outputs_and_published(paper: Study) -> None:
    table4 = paper.targets["table4_ruler_dream"]
    assert table4.outputs == [
        f"paper_figures/table4_ruler_dream.{ext}"
        for ext in ("csv", "md", "tex", "comparison.csv", "tasks.csv")
    ]
    assert table4.spec["published"][1] == "config/published/table2_ruler.csv"
    aware = paper.targets["extension_ruler_diffusion_aware_llada_8b_base"]
    assert [r.ntk_lambda for r in aware.runs] == [
        r.ntk_lambda for r in paper.targets["extension_niah_diffusion_aware_llada_8b_base"].runs
    ][:3]


def test_ruler_fingerprints_follow_what_each_stage_reads(paper_config: dict) -> None:
    from longllada import fingerprints

    def fp(config: dict, kind: str, **w: str) -> dict:
        return fingerprints.for_job(Study(config), kind, w)

    base = copy.deepcopy(paper_config)
    other = copy.deepcopy(paper_config)
    other["benchmarks"]["ruler"]["contexts"]["8k"] = 8000  # another 8k length
    other["benchmarks"]["ruler"]["shard_minutes"] = 30
    other["benchmarks"]["ruler"]["sample_limit"] = 50
    prompts = {"context": "4k", "task": "vt"}
    assert fp(base, "ruler:prompts", **prompts) == fp(other, "ruler:prompts", **prompts)
    prompts8 = {"context": "8k", "task": "vt"}
    assert fp(base, "ruler:prompts", **prompts8) != fp(other, "ruler:prompts", **prompts8)
    assert fp(other, "ruler:prompts", **prompts8)["unit"]["tokens"] == 8000
    job = {"model": "llada_8b_base", "setting": "ntk1_s64_b64", "first": "0", "stop": "50"}
    generate = fp(base, "ruler:generate", context="4k", task="vt", **job)
    assert generate["unit"] == {
        "context": "4k",
        "task": "vt",
        "first": "0",
        "stop": "50",
        "tokens": 4096,
    }
    assert generate != fp(other, "ruler:generate", context="4k", task="vt", **job)  # sample_limit


# --- LongBench: shards, data, outputs, fingerprints ----------------------------------------------


def test_longbench_jobs_are_split_into_sample_ranges(paper_config: dict) -> None:
    from longllada import budget

    study = Study(copy.deepcopy(paper_config))
    llada = study.run_for("longbench", "llada_8b_base", "ntk1_sgen_b64")
    files = study.prediction_files(llada)
    assert len({f.split("/")[-1].split(".")[0] for f in files}) == 2 * 21  # (context, subset)
    # a 512-token summary at 8K: 512 steps over ~8K tokens a sample, split over many ranges
    gov = [f for f in files if "/8k_gov_report.samples" in f]
    assert len(gov) > 2
    assert gov[0].endswith(
        "8k_gov_report.samples0-" + gov[1].split(".samples")[1].split("-")[0] + ".predictions.jsonl"
    )
    for unit in ("8k_gov_report", "4k_lcc", "8k_repobench-p"):
        ranges = budget.shards(study, llada, unit)
        n = 500 if "lcc" in unit or "repobench" in unit else 200
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        for first, stop in ranges:
            assert budget.unit_gpu_seconds(study, llada, f"{unit}.samples{first}-{stop}") <= 3600
    llama = study.run_for("longbench", "llama3_8b_base", "ntk1")
    lcc = [f for f in study.prediction_files(llama) if "/4k_lcc." in f]
    assert lcc == ["results/longbench/llama3_8b_base/ntk1/4k_lcc.samples0-500.predictions.jsonl"]
    # the cost table and the plan use the OpenCompass output lengths (qasper 32, not 128)
    one = budget.unit_work(study, llada, "4k_qasper")
    assert one == (200, 3500, 32)


def test_longbench_config_errors_name_the_key(paper_config: dict) -> None:
    def broken(edit) -> str:
        c = copy.deepcopy(paper_config)
        edit(c)
        with pytest.raises(ConfigError) as info:
            Study(c)
        return str(info.value)

    def no_data(c: dict) -> None:
        del c["data"]["longbench"]

    assert "data.longbench: required by the longbench runs" in broken(no_data)
    msg = broken(lambda c: c["benchmarks"]["longbench"]["subsets"].append("qasper_e"))
    assert "benchmarks.longbench.subsets[21]: 'qasper_e' is not one of" in msg
    msg = broken(lambda c: c["benchmarks"]["longbench"]["contexts"].update({"16K": 15000}))
    assert "benchmarks.longbench.contexts" in msg and "16K" in msg
    msg = broken(lambda c: c["benchmarks"]["longbench"].update({"dream_bos": "yes"}))
    assert "benchmarks.longbench.dream_bos: 'yes' is not of type 'boolean'" in msg


def test_longbench_table_outputs_published_and_extension(paper: Study) -> None:
    table3 = paper.targets["table3_longbench_dream"]
    assert table3.outputs == [
        f"paper_figures/table3_longbench_dream.{ext}"
        for ext in ("csv", "md", "tex", "comparison.csv", "subsets.csv")
    ]
    assert table3.spec["published"][1] == "config/published/table1_longbench.csv"
    ext = paper.targets["extension_longbench_ntk_dream"]
    assert ext.extension and {(r.model, r.ntk_lambda) for r in ext.runs} == {
        ("dream_v0_base", 5.0),
        ("dream_v0_instruct", 5.0),
    }


def test_longbench_fingerprints_follow_what_each_stage_reads(paper_config: dict) -> None:
    from longllada import data_sources, fingerprints

    def fp(config: dict, kind: str, **w: str) -> dict:
        return fingerprints.for_job(Study(config), kind, w)

    base = copy.deepcopy(paper_config)
    other = copy.deepcopy(paper_config)
    other["benchmarks"]["longbench"]["contexts"]["8k"] = 7000
    other["benchmarks"]["longbench"]["sample_limit"] = 50
    # prompts are whole and model-independent: neither a budget nor a limit changes them
    assert fp(base, "longbench:prompts", subset="lcc") == fp(
        other, "longbench:prompts", subset="lcc"
    )
    job = {"model": "dream_v0_base", "setting": "ntk1_sgen", "first": "0", "stop": "200"}
    g4 = fp(base, "longbench:generate", context="4k", subset="trec", **job)
    assert g4["unit"] == {
        "context": "4k",
        "subset": "trec",
        "first": "0",
        "stop": "200",
        "tokens": 3500,
    }
    limited = copy.deepcopy(base)
    limited["benchmarks"]["longbench"]["sample_limit"] = 50
    assert g4 != fp(limited, "longbench:generate", context="4k", subset="trec", **job)
    g8 = fp(other, "longbench:generate", context="8k", subset="trec", **job)
    assert g8["unit"]["tokens"] == 7000
    bos = copy.deepcopy(base)
    bos["benchmarks"]["longbench"]["dream_bos"] = True
    assert g4 != fp(bos, "longbench:generate", context="4k", subset="trec", **job)
    # the demo's answer cap: a generation setting (reruns the jobs), the paper has none
    capped = copy.deepcopy(base)
    capped["benchmarks"]["longbench"]["max_new_tokens_cap"] = 16
    assert g4 != fp(capped, "longbench:generate", context="4k", subset="trec", **job)
    from longllada.benchmarks import longbench

    cfg = Study(capped).benchmarks["longbench"]
    assert longbench.answer_tokens("gov_report", cfg) == 16
    assert longbench.answer_tokens("trec", cfg) == min(16, longbench.SUBSETS["trec"].max_new_tokens)
    assert longbench.answer_tokens("gov_report", base["benchmarks"]["longbench"]) == 512
    # the data check reads the configured subsets' files only
    few = copy.deepcopy(base)
    few["benchmarks"]["longbench"]["subsets"] = ["trec", "lcc"]
    study = Study(few)
    assert data_sources.files_of("longbench", study.benchmarks["longbench"]) == (
        "trec.jsonl",
        "lcc.jsonl",
    )
    assert fp(few, "longbench:data")["files"] == ["trec.jsonl", "lcc.jsonl"]


# --- the random stream across shards: Dream's shards are chained, LLaDA's and LLaMA's not ----


def test_dream_shards_are_chained_and_the_others_independent(paper: Study) -> None:
    """What the generate rules take as their `previous` input and `continue_from`: the shard
    before, for a run that draws random numbers (Dream); nothing for LLaDA and LLaMA."""
    from longllada import budget
    from longllada.config import uses_rng

    dream = paper.run_for("ruler", "dream_v0_base", "ntk1_s64")
    assert uses_rng(dream)
    files = paper.prediction_files(dream)
    d = "results/ruler/dream_v0_base/ntk1_s64"
    assert f"{d}/16k_vt.samples50-100.predictions.jsonl" in files  # 16K: two shards
    assert paper.previous_shard(dream, "16k_vt.samples50-100") == (
        f"{d}/16k_vt.samples0-50.predictions.jsonl"
    )
    assert paper.previous_shard(dream, "16k_vt.samples0-50") is None  # the file's first
    assert paper.previous_shard(dream, "4k_vt.samples0-100") is None  # not split
    # every shard k+1 of every Dream unit takes shard k, and only that one
    for unit in paper.units("ruler", "dream_v0_base"):
        ranges = budget.shards(paper, dream, unit)
        for (a, b), (c, e) in zip(ranges, ranges[1:], strict=False):
            want = f"{d}/{unit}.samples{a}-{b}.predictions.jsonl"
            assert paper.previous_shard(dream, f"{unit}.samples{c}-{e}") == want
            assert want in files
    with pytest.raises(ConfigError, match=r"samples 10-60 are not one of the shards of 16k_vt"):
        paper.previous_shard(dream, "16k_vt.samples10-60")
    # LLaDA (temperature 0) and LLaMA (greedy): independent shards
    llada = paper.run_for("ruler", "llada_8b_base", "ntk1_s64_b64")
    assert not uses_rng(llada)
    assert "16k_vt.samples50-100" in " ".join(paper.prediction_files(llada))
    assert paper.previous_shard(llada, "16k_vt.samples50-100") is None
    llama = paper.run_for("longbench", "llama3_8b_base", "ntk1")
    assert paper.previous_shard(llama, "4k_lcc.samples0-500") is None
    # LongBench: Dream's shards of a (context, subset) chained too (the job itself reseeds at
    # a shard whose first sample starts an official task)
    lb = paper.run_for("longbench", "dream_v0_base", "ntk1_sgen")
    ranges = budget.shards(paper, lb, "8k_gov_report")
    assert len(ranges) > 2
    (a, b), (c, e) = ranges[:2]
    assert paper.previous_shard(lb, f"8k_gov_report.samples{c}-{e}") == (
        f"results/longbench/dream_v0_base/ntk1_sgen/8k_gov_report.samples{a}-{b}.predictions.jsonl"
    )
    llada_lb = paper.run_for("longbench", "llada_8b_base", "ntk1_sgen_b64")
    (c, e) = budget.shards(paper, llada_lb, "8k_gov_report")[1]
    assert paper.previous_shard(llada_lb, f"8k_gov_report.samples{c}-{e}") is None


@pytest.mark.parametrize("required", [True, False, [], ["llada"], ["llada", "dream", "ar"]])
def test_verify_required_forms(paper_config: dict, required) -> None:
    """verify.required: a boolean or the families it gates (the paper's: [llada, dream])."""
    assert paper_config["verify"]["required"] == ["llada", "dream"]
    Study(_broken(paper_config, lambda c: c["verify"].update(required=required)))


@pytest.mark.parametrize("required", ["true", ["gpt"], ["llada", "llada"], {"llada": True}])
def test_verify_required_bad_forms_name_the_key(paper_config: dict, required) -> None:
    with pytest.raises(ConfigError, match=r"verify\.required"):
        Study(_broken(paper_config, lambda c: c["verify"].update(required=required)))


def test_a_rope_patch_the_config_does_not_use_is_named(paper: Study) -> None:
    """results/checkpoints/<model>/ntk7/rope_patch.json with no run at λ 7: the rule's message
    says so and lists the model's λ values (it used to be a bare KeyError)."""
    from longllada import checkpoints

    assert checkpoints.patch_scaling(paper, "llada_8b_base", "14").ntk_lambda == 14
    # the rule's input function: the manifest, once λ is checked
    assert checkpoints.patch_input(paper, "llada_8b_base", "14") == paper.checkpoint(
        "llada_8b_base"
    )
    with pytest.raises(ConfigError, match="λ 7 is no run of llada_8b_base"):
        checkpoints.patch_input(paper, "llada_8b_base", "7")
    with pytest.raises(
        ConfigError,
        match=r"ntk7/rope_patch\.json: λ 7 is no run of llada_8b_base in the config; its "
        r"RoPE patches: λ 4, 13, 14, 27, 31, 45, 55",
    ):
        checkpoints.patch_scaling(paper, "llada_8b_base", "7")
    with pytest.raises(ConfigError, match=r"λ 1 is the original checkpoint.*download\.json"):
        checkpoints.patch_scaling(paper, "dream_v0_base", "1")
    with pytest.raises(ConfigError, match=r"no model 'llada_9b' in the config \(its models: "):
        checkpoints.patch_scaling(paper, "llada_9b", "4")
    with pytest.raises(ConfigError, match=r"ntkfour/rope_patch\.json: λ 'four' is not a number"):
        checkpoints.patch_scaling(paper, "llada_8b_base", "four")


def test_a_target_eaten_by_configfile_is_explained(tmp_path: Path) -> None:
    """`snakemake -n --configfile FILE implemented`: --configfile takes every following word as
    a config file. A word that is not found never reaches the Snakefile (Snakemake's own
    traceback, README); one that is a file (a results JSON, say) stops with the hint."""
    from longllada import invocation

    demo = tmp_path / "config/demo.yaml"
    ok = [demo, tmp_path / "other.yml", tmp_path / "x.json"]
    assert invocation.check_command_line(tmp_path, tmp_path, ok) is None
    eaten = [demo, tmp_path / "results/checkpoints/m/ntk4/rope_patch.json", tmp_path / "all"]
    with pytest.raises(invocation.InvocationError) as err:
        invocation.check_command_line(tmp_path, tmp_path, eaten)
    text = str(err.value)
    assert "results/checkpoints/m/ntk4/rope_patch.json, all" in text
    assert "--configfile takes every word after it as a config file" in text
    targets = "results/checkpoints/m/ntk4/rope_patch.json all"
    assert f"snakemake [options] {targets} --configfile config/demo.yaml" in text
    assert f"snakemake [options] --configfile config/demo.yaml -- {targets}" in text


def test_another_working_directory_is_named(tmp_path: Path) -> None:
    """snakemake started outside the repository root: without --configfile the default config
    is not there (stop, saying to run from the root or pass --directory); with one, the config's
    relative paths found in the repository but not here are named (a warning)."""
    from longllada import invocation

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(invocation.InvocationError) as err:
        invocation.check_command_line(elsewhere, ROOT, [])
    text = str(err.value)
    assert f"runs in {elsewhere}" in text and "config/paper.yaml" in text
    assert f"--directory {ROOT}" in text and "repository root" in text
    assert invocation.check_command_line(ROOT, ROOT, []) is None
    config = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    warning = invocation.paths_not_here(elsewhere, ROOT, config)
    assert warning is not None and "config/published/" in warning
    assert f"--directory {ROOT}" in warning
    assert invocation.paths_not_here(ROOT, ROOT, config) is None


def test_files_the_config_names_must_exist(tmp_path: Path) -> None:
    """On a built tree Snakemake keeps a table whose published CSV vanished and a figure whose
    document did (their outputs exist, and no rule makes the input): every file or directory the
    config names is checked when the config is loaded (the Snakefile, `longllada validate`), by
    key and path, relative paths read from the working directory."""
    demo = yaml.safe_load((ROOT / "config/demo.yaml").read_text())
    assert Study(copy.deepcopy(demo)).input_problems(ROOT) == []
    cfg = copy.deepcopy(demo)
    cfg["targets"]["figure1a_perplexity"]["published"] = "config/published/gone.csv"
    cfg["targets"]["table3_longbench_dream"]["published"][1] = "config/published"  # a directory
    cfg["data"]["ppl_document"] = "resources/gone.txt"
    cfg["data"]["needlebench"] = "nowhere/needlebench"  # a local data directory
    entry = cfg["models"]["llada_tiny_base"]
    del entry["demo"]
    entry["local_dir"] = str(tmp_path / "no_checkpoint")
    problems = Study(cfg).input_problems(ROOT)
    here = f"(relative paths are read from the working directory {ROOT})"
    assert problems == [
        f"targets.figure1a_perplexity.published: config/published/gone.csv does not exist {here}",
        f"targets.table3_longbench_dream.published[1]: config/published is not a file {here}",
        f"data.ppl_document: resources/gone.txt does not exist {here} (or set "
        "data.ppl_document_url: the rule fetch_ppl_document fetches it)",
        f"data.needlebench: nowhere/needlebench does not exist {here}",
        f"models.llada_tiny_base.local_dir: {tmp_path / 'no_checkpoint'} does not exist",
    ]
    # The same config from another working directory: its relative paths are read from there.
    elsewhere = Study(copy.deepcopy(demo)).input_problems(tmp_path)
    named = [t.get("published", []) for t in demo["targets"].values()]
    published = sum(1 if isinstance(n, str) else len(n) for n in named)
    assert len(elsewhere) == published + 1  # and the document
    assert all(f"working directory {tmp_path})" in p for p in elsewhere)
    # ... unless they are in the repository: the Snakefile's warning names those
    # (invocation.paths_not_here), as a copy of the workflow elsewhere is legitimate.
    assert Study(copy.deepcopy(demo)).input_problems(tmp_path, ROOT) == []
    assert len(Study(copy.deepcopy(cfg)).input_problems(tmp_path, ROOT)) == 5
    # A document with a URL is made by the local rule fetch_ppl_document: not a problem.
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    assert "ppl_document_url" in paper["data"]
    assert all(".published" in p for p in Study(paper).input_problems(tmp_path))
    assert Study(paper).input_problems(ROOT) == []
