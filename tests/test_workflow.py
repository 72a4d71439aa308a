"""The workflow through the `snakemake` command, in a temporary copy of the repository."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from repo_copy import copy_repo, fast_env

from longllada.config import GENERATIVE, Study

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
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
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository as a fresh clone would have it (tracked and not-ignored files)."""
    dst = tmp_path_factory.mktemp("repo")
    copy_repo(dst)
    return dst


@pytest.fixture(scope="module")
def demo_run(workdir: Path) -> subprocess.CompletedProcess:
    return snakemake(workdir, "implemented", "--configfile", "config/demo.yaml")


def test_demo_builds_checkpoints_and_figures(workdir: Path, demo_run) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    for name in ("figure1a_perplexity", "figure4_rope_position_coverage", "figure5_tsne_qk_states"):
        assert (workdir / f"paper_figures/{name}.pdf").read_bytes().startswith(b"%PDF")

    manifest = json.loads(
        (workdir / "results/checkpoints/llada_tiny_base/download.json").read_text()
    )
    assert manifest["source"] == "local"
    assert Path(manifest["snapshot_dir"]) == workdir / "results/demo_hub/llada_tiny_base"
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
        runs = [r for r in study.runs.values() if r.benchmark == bench]
        assert counts[f"{bench}_generate"] == sum(len(study.prediction_files(r)) for r in runs)
        assert counts[f"{bench}_score"] == len(runs)
    assert counts["download"] == 7
    assert counts["rope_patch"] == 15
    assert counts["figure_niah"] == 9 and counts["table"] == 4
    assert counts["figure_rope_coverage"] == counts["figure_perplexity"] == 1
    assert counts["perplexity_diffusion"] == counts["perplexity_causal"] == 2
    assert counts["qk_states"] == 2


def test_one_target_asks_only_its_runs(workdir: Path) -> None:
    out = snakemake(workdir, "-n", "paper_figures/figure6_niah_ntk_llada_8b_base.pdf")
    assert out.returncode == 0, out.stderr[-3000:]
    assert job_counts(out.stdout + out.stderr) == {
        "download": 1,
        "rope_patch": 4,
        "niah_prompts": 6,
        "niah_generate": 24,
        "niah_score": 4,
        "figure_niah": 1,
        "total": 40,
    }


def test_bad_config_stops_with_the_key(workdir: Path) -> None:
    bad = (workdir / "config/demo.yaml").read_text().replace("t_train: 256", "t_train: -3", 1)
    (workdir / "bad.yaml").write_text(bad)
    out = snakemake(workdir, "--configfile", "bad.yaml", "-n")
    assert out.returncode != 0
    assert "models.llada_tiny_base.t_train: -3 is less than the minimum of 1" in (
        out.stdout + out.stderr
    )


def test_pending_stage_fails_loudly(workdir: Path, demo_run) -> None:
    out = snakemake(
        workdir, "results/prompts/niah/len128.jsonl", "--configfile", "config/demo.yaml"
    )
    assert out.returncode != 0, out.stdout
    assert "not implemented yet" in out.stderr, out.stderr[-2000:]
    log = (workdir / "logs/prompts/niah/len128.log").read_text()
    assert "not implemented yet" in log
    assert not (workdir / "results/prompts/niah/len128.jsonl").exists()
