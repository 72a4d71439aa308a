"""The workflow through the `snakemake` command, in a temporary copy of the repository."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from repo_copy import SNAKEMAKE, fast_env

from longllada.config import GENERATIVE, Study

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    # targets first: --configfile takes every following word as a file
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=fast_env(workdir.parent),
    )


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def workdir(built_demo) -> Path:
    """A fresh-clone copy of the repository where the demo was built (conftest.built_demo);
    the dry runs below plan other configs there."""
    return built_demo[0]


@pytest.fixture(scope="module")
def demo_run(built_demo) -> subprocess.CompletedProcess:
    """The demo's snakemake call, `./quickstart.sh demo`'s own."""
    return built_demo[1]


def test_demo_builds_checkpoints_and_figures(workdir: Path, demo_run) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    for name in ("figure1a_perplexity", "figure4_rope_position_coverage", "figure5_tsne_qk_states"):
        assert (workdir / f"paper_figures/{name}.pdf").read_bytes().startswith(b"%PDF")

    manifest = json.loads(
        (workdir / "results/checkpoints/llada_tiny_base/download.json").read_text()
    )
    assert manifest["source"] == "local"
    # relative to the project, so a copied project loads its own files
    assert manifest["snapshot_dir"] == "results/demo_hub/llada_tiny_base"
    assert manifest["model_key"] == "llada_tiny_base"
    assert "provenance" not in manifest  # run facts live in the sidecar: reruns stay byte-equal
    sidecar = json.loads(
        (workdir / "results/checkpoints/llada_tiny_base/download.provenance.json").read_text()
    )
    assert sidecar["stage"] == "download" and sidecar["model"]["key"] == "llada_tiny_base"
    assert sidecar["model"]["checkpoint_sha256"] == manifest["checkpoint_sha256"]

    for model, lam in (("llada_tiny_base", 3), ("llada_tiny_base", 11), ("llama_tiny_base", 11)):
        patch_dir = workdir / f"results/checkpoints/{model}/ntk{lam}"
        record = json.loads((patch_dir / "rope_patch.json").read_text())
        assert record["ntk_lambda"] == lam and record["new_theta"] == 10_000 * lam
        patch_prov = json.loads((patch_dir / "rope_patch.provenance.json").read_text())
        assert patch_prov["packages"]["torch"] and patch_prov["stage"] == "rope_patch"
        assert (
            record["source"]["checkpoint_sha256"]
            == json.loads((workdir / f"results/checkpoints/{model}/download.json").read_text())[
                "checkpoint_sha256"
            ]
        )
        shard = patch_dir / "model-00001-of-00002.safetensors"
        assert shard.is_symlink()
        assert shard.resolve() == (workdir / f"results/demo_hub/{model}" / shard.name).resolve()
    for log in ("download/llada_tiny_base.log", "rope_patch/llada_tiny_base_ntk3.log"):
        assert (workdir / "logs" / log).exists()


NIAH_FIGURES = (
    "figure1b_niah_by_length",
    "figure2_niah_direct_extrapolation",
    "figure3_niah_steps_llada_8b_base",
    "figure6_niah_ntk_llada_8b_base",
    "figure7_niah_ntk_llada_8b_instruct",
    "figure8_niah_ntk_llada_1_5",
    "figure9_niah_dream",
    "figure10_niah_steps_llada_8b_instruct",
    "figure11_niah_steps_llada_1_5",
)


def test_demo_builds_every_niah_figure_end_to_end(workdir: Path, demo_run) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    study = Study.from_file(workdir / "config/demo.yaml")
    data = json.loads((workdir / "results/data/needlebench/manifest.json").read_text())
    assert data["source"]["demo"] == "paul_graham_essays"
    assert set(data["files"]) == {"needles.jsonl", "en_un_asr.jsonl"}
    for length in study.benchmarks["niah"]["lengths"]:
        meta = json.loads((workdir / f"results/prompts/niah/len{length}.meta.json").read_text())
        assert meta["opencompass"] == "0.5.4" and meta["cl100k_sha256"].startswith("223921b7")
        assert meta["data"]["files"] == data["files"]
        assert meta["rows"] == 3 * 2 and meta["cl100k_tokens_max"] <= length
    for name in NIAH_FIGURES:
        assert (workdir / f"paper_figures/{name}.pdf").read_bytes().startswith(b"%PDF")
        drawn = (workdir / f"paper_figures/{name}.csv").read_text().splitlines()
        assert drawn[0].startswith("panel,kind,model") and len(drawn) > 1
        comparison = (workdir / f"paper_figures/{name}.comparison.csv").read_text()
        assert comparison.startswith("panel,kind,length,depth,published_figure")
    # Figure 3's first panel stands beside the paper's 3a (LLaDA-8B-Base, 1 step): 45.59
    rows = (workdir / "paper_figures/figure3_niah_steps_llada_8b_base.comparison.csv").read_text()
    overall = [r.split(",") for r in rows.splitlines() if ",overall," in r]
    assert overall[0][4:9] == ["3a", "LLaDA-8B-Base", "1", "1", "45.59"]
    # One run: every sample generated, scored, aggregated; Dream's fallbacks counted
    scores = json.loads((workdir / "results/niah/dream_tiny_base/ntk1_s8/scores.json").read_text())
    assert scores["n_samples"] == scores["n_full"] == 3 * 3 * 2
    assert len(scores["cells"]) == 9 and len(scores["samples"]) == 18
    cells = [c["score"] for c in scores["cells"]]
    assert abs(scores["overall"] - sum(cells) / len(cells)) < 1e-9
    record = json.loads(
        (workdir / "results/niah/dream_tiny_base/ntk1_s8/len512.provenance.json").read_text()
    )
    assert record["settings"]["applied"]["sampling"] == "paper"
    assert record["totals"]["sampling_calls"] >= record["totals"]["greedy_fallbacks"] >= 0
    assert record["samples"]["selected"] == 6
    tidy = (workdir / "paper_figures/niah_all_runs.csv").read_text().splitlines()
    niah_runs = [r for r in study.paper_runs() if r.benchmark == "niah"]
    assert len(tidy) == 1 + 9 * len(niah_runs)


RULER_TABLES = ("table2_ruler", "table4_ruler_dream")


def test_demo_builds_the_ruler_tables_end_to_end(workdir: Path, demo_run) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    study = Study.from_file(workdir / "config/demo.yaml")
    data = json.loads((workdir / "results/data/ruler/manifest.json").read_text())
    assert set(data["files"]) == {"PaulGrahamEssays.jsonl", "dev-v2.0.json", "hotpotqa.json"}
    tasks = study.benchmarks["ruler"]["tasks"]
    assert len(tasks) == 13
    for task in tasks:
        meta = json.loads((workdir / f"results/prompts/ruler/1k_{task}.meta.json").read_text())
        assert meta["wonderwords"] == "2.2.0" and meta["data"]["files"] == data["files"]
        assert meta["rows"] == 2 and meta["cl100k_tokens_max"] <= 1024
    for name in RULER_TABLES:
        for ext in ("md", "tex", "comparison.csv", "tasks.csv"):
            assert (workdir / f"paper_figures/{name}.{ext}").stat().st_size > 0
        wide = (workdir / f"paper_figures/{name}.csv").read_text().splitlines()
        assert wide[0].startswith("model,label,setting,ntk_lambda,1k_NIAH,1k_AGG,1k_QA,1k_Avg")
        # Table 2: LLaDA λ 1, 11 and LLaMA λ 1, 11; Table 4: Dream base, instruct and LLaMA λ 1
        assert len(wide) == 1 + (4 if name == "table2_ruler" else 3)
        assert "\\toprule" in (workdir / f"paper_figures/{name}.tex").read_text()
    # Table 4's LLaMA row stands beside Table 2's LLaMA3-8B-Base row (matched by position)
    comparison = (workdir / "paper_figures/table4_ruler_dream.comparison.csv").read_text()
    assert ",llama_tiny_base,LLaMA-tiny-Base,1,1k,NIAH,LLaMA3-8B-Base,1,4k,99.8," in comparison
    scores = json.loads(
        (workdir / "results/ruler/dream_tiny_base/ntk1_s16/scores.json").read_text()
    )
    assert scores["n_samples"] == scores["n_full"] == 13 * 2
    assert {t["task"] for t in scores["tasks"]} == set(tasks)
    record = json.loads(
        (
            workdir / "results/ruler/dream_tiny_base/ntk1_s16/1k_vt.samples0-2.provenance.json"
        ).read_text()
    )
    assert record["settings"]["applied"]["steps"] == 16 and record["samples"]["range"] == [0, 2]


LONGBENCH_TABLES = ("table1_longbench", "table3_longbench_dream")


def test_demo_builds_the_longbench_tables_end_to_end(workdir: Path, demo_run) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    study = Study.from_file(workdir / "config/demo.yaml")
    subsets = study.benchmarks["longbench"]["subsets"]
    assert len(subsets) == 21
    data = json.loads((workdir / "results/data/longbench/manifest.json").read_text())
    assert set(data["files"]) == {f"{s}.jsonl" for s in subsets}
    for subset in subsets:
        meta = json.loads((workdir / f"results/prompts/longbench/{subset}.meta.json").read_text())
        assert (
            meta["rows"] == 3
            and meta["data"]["sha256"] == data["files"][f"{subset}.jsonl"]["sha256"]
        )
        assert meta["opencompass_entry"]["max_out_len"] in (32, 64, 128, 512)
    for name in LONGBENCH_TABLES:
        for ext in ("md", "tex", "comparison.csv", "subsets.csv"):
            assert (workdir / f"paper_figures/{name}.{ext}").stat().st_size > 0
        wide = (workdir / f"paper_figures/{name}.csv").read_text().splitlines()
        assert ",1k_SD,1k_MD,1k_Sum,1k_ICL,1k_Syn,1k_Code,1k_Avg," in wide[0]
        assert len(wide) == 1 + 3  # LLaDA λ 1, 3 and LLaMA; Dream base, instruct and LLaMA
        assert "\\toprule" in (workdir / f"paper_figures/{name}.tex").read_text()
        subset_rows = (workdir / f"paper_figures/{name}.subsets.csv").read_text().splitlines()
        assert len(subset_rows) == 1 + 3 * 21
    # Table 3's Dream rows are suspect (Instruct = Base + 1.0, Base = Table 1's LLaDA-1.5 λ 4
    # + 1.0 in every cell): flagged, not fixed; no LLaMA row is
    comparison = (workdir / "paper_figures/table3_longbench_dream.comparison.csv").read_text()
    flagged = [line for line in comparison.splitlines() if "transcription error" in line]
    assert any("dream_tiny_instruct" in line for line in flagged)
    assert not any("llama" in line for line in flagged)
    scores = json.loads(
        (workdir / "results/longbench/dream_tiny_base/ntk1_sgen/scores.json").read_text()
    )
    assert scores["n_samples"] == 21 and scores["n_full"] == 21 * 3
    assert {s["subset"] for s in scores["subsets"]} == set(subsets)
    sample = scores["samples"][0]
    assert sample["prompt_tokens"] <= 768 and "prompt_tokens_before_truncation" in sample
    record = json.loads(
        (
            workdir
            / "results/longbench/dream_tiny_base/ntk1_sgen/1k_gov_report.samples0-1.provenance.json"
        ).read_text()
    )
    settings = record["settings"]
    # gov_report's max_out_len is 512; the demo caps answers at 16 (max_new_tokens_cap)
    assert settings["applied"]["steps"] == 16 and settings["max_new_tokens"] == 16
    assert settings["truncation"] == {"drop_middle": 768}
    assert settings["dream_bos_string"] is False  # as the official drop-middle path


def test_demo_builds_the_reproduction_report(workdir: Path, demo_run) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    study = Study.from_file(workdir / "config/demo.yaml")
    md = (workdir / "paper_figures/reproduction_report.md").read_text()
    html = (workdir / "paper_figures/reproduction_report.html").read_text()
    assert "> **Limited run: tiny random-weight demo models" in md
    for target in study.paper_targets():
        assert f"## {target.name}" in md and f'id="{target.name}"' in html
        assert not re.search(rf"^\| {target.name} \| not built", md, re.M), target.name
    # every figure inlined, nothing fetched from the network
    figures = [t for t in study.paper_targets() if f"paper_figures/{t.name}.png" in t.outputs]
    assert html.count("data:image/png;base64,") == len(figures) > 0
    assert not re.search(r"(src|href)=\"https?:", html)
    # tiny random models lie far from the paper: verdicts say so, and compare --strict fails
    assert re.search(r"^\| table2_ruler \| outside \|", md, re.M)
    assert re.search(r"^\| figure1a_perplexity \| outside \|", md, re.M)
    compare = subprocess.run(
        [
            str(Path(sys.executable).parent / "longllada"),
            "compare",
            ".",
            "--config",
            "config/demo.yaml",
            "--strict",
            "--cells",
            "none",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=fast_env(workdir.parent),
    )
    assert compare.returncode == 1 and "table1_longbench" in compare.stdout
    # Snakemake's own report: the figures and tables under their captions
    zipped = snakemake(
        workdir, "--configfile", "config/demo.yaml", "--report", "report.zip", timeout=600
    )
    assert zipped.returncode == 0, zipped.stderr[-3000:]
    names = zipfile.ZipFile(workdir / "report.zip").namelist()
    assert any(n.endswith("reproduction_report.html") for n in names)
    assert any(n.endswith("table1_longbench.csv") for n in names)


def test_demo_rerun_has_nothing_to_do(workdir: Path, demo_run) -> None:
    again = snakemake(workdir, "-n", "implemented", "--configfile", "config/demo.yaml")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_paper_dry_run_plans_every_target(workdir: Path) -> None:
    out = snakemake(workdir, "-n", "all")
    assert out.returncode == 0, out.stderr[-3000:]
    counts = job_counts(out.stdout + out.stderr)
    study = Study.from_file(workdir / "config/paper.yaml")
    for bench in GENERATIVE:
        runs = [r for r in study.paper_runs() if r.benchmark == bench]
        assert counts[f"{bench}_generate"] == sum(len(study.prediction_files(r)) for r in runs)
        assert counts[f"{bench}_score"] == len(runs)
    assert counts["download"] == 7
    assert counts["rope_patch"] == 15
    assert counts["figure_niah"] == 9
    assert counts["table_longbench"] == 2 and counts["table_ruler"] == 2
    assert counts["figure_rope_coverage"] == counts["figure_perplexity"] == 1
    assert counts["perplexity_diffusion"] == counts["perplexity_causal"] == 2
    assert counts["qk_states"] == 2
    assert counts["niah_data"] == counts["niah_all_runs"] == 1 and counts["niah_prompts"] == 6
    assert counts["ruler_data"] == 1 and counts["ruler_prompts"] == 3 * 13
    # RULER's long diffusion jobs split into sample ranges: more jobs than (run, task, length)
    ruler_runs = [r for r in study.paper_runs() if r.benchmark == "ruler"]
    assert counts["ruler_generate"] > len(ruler_runs) * 3 * 13
    assert "16k_vt.samples50-100.predictions.jsonl" in out.stdout
    # LongBench: one data check, the 21 subsets' prompts once (model-independent), and the
    # long jobs (lcc's 500 samples, the 512-token summaries) split into sample ranges
    assert counts["longbench_data"] == 1 and counts["longbench_prompts"] == 21
    lb_runs = [r for r in study.paper_runs() if r.benchmark == "longbench"]
    assert counts["longbench_generate"] > len(lb_runs) * 2 * 21
    assert re.search(r"llada_8b_base/ntk1_sgen_b64/8k_gov_report\.samples\d+-200\.", out.stdout)
    assert "extension" not in out.stdout  # the extensions are not part of `all`


def test_extensions_are_their_own_target(workdir: Path) -> None:
    out = snakemake(workdir, "-n", "extensions")
    assert out.returncode == 0, out.stderr[-3000:]
    counts = job_counts(out.stdout + out.stderr)
    # 10 runs: LLaMA3 λ 4, 13 (x2), Dream λ 5 (x2), diffusion-aware λ 4, 13, 27, 45
    assert counts["figure_niah"] == 4 and counts["niah_score"] == 10
    # RULER: Dream λ 5 (x2), diffusion-aware λ 4, 13, 27 (λ 4 is Table 2's run, not built here)
    assert counts["table_ruler"] == 2 and counts["ruler_score"] == 5
    # LongBench: Dream λ 5 (x2), which the official grid ran and the paper never published
    assert counts["table_longbench"] == 1 and counts["longbench_score"] == 2


def test_one_target_asks_only_its_runs(workdir: Path) -> None:
    out = snakemake(workdir, "-n", "paper_figures/figure6_niah_ntk_llada_8b_base.pdf")
    assert out.returncode == 0, out.stderr[-3000:]
    assert job_counts(out.stdout + out.stderr) == {
        "download": 1,
        "rope_patch": 4,
        "verify": 1,  # the paper config verifies LLaDA and Dream before their GPU jobs
        "niah_data": 1,
        "niah_prompts": 6,
        "niah_generate": 24,
        "niah_score": 4,
        "figure_niah": 1,
        "total": 42,
    }


def test_bad_config_stops_with_the_key(workdir: Path) -> None:
    bad = (workdir / "config/demo.yaml").read_text().replace("t_train: 256", "t_train: -3", 1)
    (workdir / "bad.yaml").write_text(bad)
    out = snakemake(workdir, "--configfile", "bad.yaml", "-n")
    assert out.returncode != 0
    assert "models.llada_tiny_base.t_train: -3 is less than the minimum of 1" in (
        out.stdout + out.stderr
    )


def test_unknown_niah_length_has_no_rule(workdir: Path) -> None:
    out = snakemake(
        workdir, "-n", "results/prompts/niah/len999.jsonl", "--configfile", "config/demo.yaml"
    )
    assert out.returncode != 0
    assert "results/prompts/niah/len999.jsonl" in out.stdout + out.stderr
