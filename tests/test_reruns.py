"""Every result matches the config and the inputs that made it: what `snakemake -n` plans after a
real change of the config or of an input, on the demo built end to end in a copy of the repo.

Each plan must hold exactly the jobs the change affects: a model's dtype reruns its GPU jobs and
the figures that draw them, not its download; a label reruns figures only; a demo seed, a
local_dir or a hub source rebuilds the checkpoint and everything after it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from repo_copy import SNAKEMAKE, fast_env

pytestmark = pytest.mark.slow

PPL_LLADA = "results/ppl/llada_tiny_base/ntk1/mc2_chunk64.json"
# llada_tiny_base's NIAH runs: Figures 1b/2 (steps 8), 3 (steps 1, 4) and 6 (λ 3, 11), 3 lengths;
# its RULER runs: Table 2's λ 1 and 11, 13 tasks at one length; its LongBench runs: Table 1's
# λ 1 and 3, 21 subsets at one context
GPU_LLADA = {
    "perplexity_diffusion": 1,
    "qk_states": 1,
    "niah_generate": 15,
    "niah_score": 5,
    "ruler_generate": 26,
    "ruler_score": 2,
    "longbench_generate": 42,
    "longbench_score": 2,
}
PPL_FIGURES = {"figure_perplexity": 1, "figure_tsne": 1}
# Figures 1b, 2, 3, 6 and Tables 1, 2
FIGURES = {
    **PPL_FIGURES,
    "figure_niah": 4,
    "niah_all_runs": 1,
    "table_ruler": 1,
    "table_longbench": 1,
}
CHECKPOINT = {"download": 1, "rope_patch": 2}  # llada_tiny_base has λ 3 and 11 in the demo


def snakemake(work: Path, *args: str, config: str = "config/demo.yaml", timeout: int = 900):
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args, "--configfile", config],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=fast_env(work.parent),
    )


def plan(work: Path, config: str = "config/demo.yaml", target: str = "implemented") -> dict:
    """The jobs `snakemake -n` would run: rule -> count ({} for nothing to do)."""
    out = snakemake(work, "-n", target, config=config)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    counts.pop("total")
    counts.pop("implemented", None)  # the aggregate target rule reruns with any input
    if target == "implemented":  # the report reads every target's outputs: any rerun rebuilds it
        assert counts.pop("reproduction_report", 0) == 1, counts
    return counts


def variant(work: Path, name: str, old: str, new: str) -> str:
    """A copy of the demo config with one text replaced (which must be there)."""
    text = (work / "config/demo.yaml").read_text()
    assert old in text, old
    (work / name).write_text(text.replace(old, new, 1))
    return name


LLADA_ENTRY = "demo: {preset: tiny, seed: 3}"  # llada_tiny_base's source in config/demo.yaml


@pytest.fixture(scope="module")
def work(built_demo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built demo (conftest.built_demo) with its results, Snakemake's records,
    mtimes and relative links as they are: the changes below stay in it."""
    built, run = built_demo
    assert run.returncode == 0, run.stderr[-3000:]
    dst = tmp_path_factory.mktemp("reruns") / "repo"
    shutil.copytree(built, dst, symlinks=True)
    return dst


def test_unchanged_rerun_does_nothing(work: Path) -> None:
    assert plan(work) == {}


def test_dtype_reruns_the_models_gpu_jobs_not_its_download(work: Path) -> None:
    old = "\n    ".join(
        [LLADA_ENTRY, "t_train: 256", "rope_theta: 10000", "head_dim: 16", "dtype: float32"]
    )
    cfg = variant(work, "dtype.yaml", old, old.replace("float32", "bfloat16"))
    assert plan(work, cfg) == {**GPU_LLADA, **FIGURES}


def test_label_reruns_the_figures_only(work: Path) -> None:
    cfg = variant(work, "label.yaml", "label: LLaDA-tiny-Base", "label: LLaDA-tiny (renamed)")
    assert plan(work, cfg) == {**FIGURES, "figure_rope_coverage": 1}


def test_niah_sample_limit_reruns_generation_and_scores_not_prompts(work: Path) -> None:
    cfg = variant(
        work,
        "limit.yaml",
        "    sample_limit: null\n  longbench:",
        "    sample_limit: 4\n  longbench:",
    )
    assert plan(work, cfg) == {
        "niah_generate": 54,
        "niah_score": 18,
        "figure_niah": 9,
        "niah_all_runs": 1,
    }


def test_ruler_sample_limit_reruns_generation_and_scores_not_prompts(work: Path) -> None:
    cfg = variant(
        work,
        "ruler_limit.yaml",
        "    sample_limit: null\n    prompt_timeout_s: 600",
        "    sample_limit: 1\n    prompt_timeout_s: 600",
    )
    # 6 runs x 13 tasks, each now the range samples0-1
    assert plan(work, cfg) == {"ruler_generate": 78, "ruler_score": 6, "table_ruler": 2}


def test_longbench_sample_limit_reruns_generation_and_scores_not_prompts(work: Path) -> None:
    old = "    sample_limit: 1 # of the 3 records"
    cfg = variant(work, "longbench_limit.yaml", old, old.replace("1", "2", 1))
    # 5 runs x 21 subsets, each now the range samples0-2; the prompts are whole: not rerun
    assert plan(work, cfg) == {
        "longbench_generate": 105,
        "longbench_score": 5,
        "table_longbench": 2,
    }


def test_another_longbench_context_adds_only_its_jobs(work: Path) -> None:
    cfg = variant(
        work, "longbench_ctx.yaml", "contexts: {1k: 768}", "contexts: {1k: 768, 2k: 1536}"
    )
    # the new context's 5 x 21 jobs; every run's scores and both tables take it
    assert plan(work, cfg) == {
        "longbench_generate": 105,
        "longbench_score": 5,
        "table_longbench": 2,
    }


def test_ruler_prompt_time_limit_reruns_nothing(work: Path) -> None:
    cfg = variant(work, "ruler_timeout.yaml", "prompt_timeout_s: 600", "prompt_timeout_s: 900")
    assert plan(work, cfg) == {}


def test_another_niah_length_adds_only_its_jobs(work: Path) -> None:
    cfg = variant(
        work, "lengths.yaml", "lengths: [256, 512, 1024]", "lengths: [256, 512, 768, 1024]"
    )
    # its prompts and 18 generation jobs; every run's scores and figures take the new length
    assert plan(work, cfg) == {
        "niah_prompts": 1,
        "niah_generate": 18,
        "niah_score": 18,
        "figure_niah": 9,
        "niah_all_runs": 1,
    }


def test_demo_seed_rebuilds_the_checkpoint_and_what_follows(work: Path) -> None:
    cfg = variant(work, "seed.yaml", LLADA_ENTRY, "demo: {preset: tiny, seed: 33}")
    assert plan(work, cfg) == {"demo_checkpoint": 1, **CHECKPOINT, **GPU_LLADA, **FIGURES}


def test_switch_to_another_local_checkpoint(work: Path) -> None:
    other = "local_dir: results/demo_hub/llada_tiny_instruct"
    cfg = variant(work, "local.yaml", LLADA_ENTRY, other)
    assert plan(work, cfg) == {**CHECKPOINT, **GPU_LLADA, **FIGURES}


def test_switch_to_a_hub_checkpoint(work: Path) -> None:
    hub = "hub_id: GSAI-ML/LLaDA-8B-Base\n    revision: " + "0123456789abcdef" * 2 + "01234567"
    cfg = variant(work, "hub.yaml", LLADA_ENTRY, hub)
    assert plan(work, cfg) == {**CHECKPOINT, **GPU_LLADA, **FIGURES}


def test_edited_document_reruns_its_jobs_and_restored_bytes_rerun_nothing(work: Path) -> None:
    doc = work / "src/longllada/data/demo_document.jsonl"
    original = doc.read_bytes()
    try:
        doc.write_bytes(original.replace(b"the", b"teh", 1))
        assert plan(work) == {
            "perplexity_diffusion": 1,
            "perplexity_causal": 1,
            "qk_states": 2,
            **PPL_FIGURES,
        }
    finally:
        doc.write_bytes(original)  # newer than every result, but the same bytes
    assert plan(work) == {}


# --- a local_dir checkpoint outside the DAG, and a hub checkpoint pinned after download --------


def _local_config(work: Path, local: Path) -> str:
    return variant(work, "mine.yaml", LLADA_ENTRY, f"local_dir: {local}")


def test_replaced_local_weights_rerun_the_download_check_and_what_follows(work: Path) -> None:
    local = work.parent / "my_llada"
    shutil.copytree(work / "results/demo_hub/llada_tiny_base", local)
    cfg = _local_config(work, local)
    built = snakemake(work, PPL_LLADA, config=cfg)
    assert built.returncode == 0, built.stderr[-3000:]
    assert plan(work, cfg, PPL_LLADA) == {}
    # Another checkpoint's weights, same names and shapes, in place:
    for shard in (work / "results/demo_hub/llada_tiny_instruct").glob("*.safetensors"):
        shutil.copyfile(shard, local / shard.name)
    assert plan(work, cfg, PPL_LLADA) == {"download": 1, "perplexity_diffusion": 1}


def test_pinning_the_resolved_commit_reruns_nothing_another_commit_everything(
    work: Path, fake_hub, tmp_path: Path
) -> None:
    from longllada import checkpoints
    from longllada.files import read_json

    snapshot = work / "results/demo_hub/llada_tiny_base"
    repo = fake_hub.add_repo("fake-org/llada-tiny", snapshot)
    hub_entry = "hub_id: fake-org/llada-tiny\n    revision: {}"
    cfg = variant(work, "hub_main.yaml", LLADA_ENTRY, hub_entry.format("main"))
    built = snakemake(work, PPL_LLADA, config=cfg)
    assert built.returncode == 0, built.stderr[-3000:]
    manifest = read_json(work / "results/checkpoints/llada_tiny_base/download.json")
    assert manifest["source"] == "hub" and manifest["commit_sha"] == repo.sha
    sidecar = checkpoints.provenance_path(
        work / "results/checkpoints/llada_tiny_base/download.json"
    )
    assert read_json(sidecar)["requested_revision"] == "main"

    # README: pin the commit `main` resolved to. Same bytes: nothing reruns.
    pinned = variant(work, "hub_pinned.yaml", LLADA_ENTRY, hub_entry.format(repo.sha))
    assert plan(work, pinned, PPL_LLADA) == {}

    # Another commit (here: other weights) is another checkpoint.
    other = {p.name: p.read_bytes() for p in snapshot.iterdir() if p.is_file()}
    for shard in (work / "results/demo_hub/llada_tiny_instruct").glob("*.safetensors"):
        other[shard.name] = shard.read_bytes()
    newer = fake_hub.add_repo("fake-org/llada-tiny", other)
    assert newer.sha != repo.sha
    moved = variant(work, "hub_moved.yaml", LLADA_ENTRY, hub_entry.format(newer.sha))
    assert plan(work, moved, PPL_LLADA) == {"download": 1, "perplexity_diffusion": 1}


# --- an orphaned job of a killed snakemake ----------------------------------------------------


def test_orphaned_job_blocks_a_second_writer(work: Path) -> None:
    """The submitting snakemake is killed; its job lives on; a rerun must not append to the same
    partial file, and says which process holds it."""
    # ~30 s a chunk at LLaDA's real vocabulary size: slow enough to outlive its snakemake
    slow = variant(work, "slow.yaml", "mc_draws: 2", "mc_draws: 1000")
    target = PPL_LLADA.replace("mc2_", "mc1000_")
    progress = work / target.replace(".json", ".chunks.jsonl")
    first = subprocess.Popen(
        [SNAKEMAKE, "--cores", "1", target, "--configfile", slow],
        cwd=work,
        env=fast_env(work.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    orphan_pgid = os.getpgid(first.pid)
    try:
        deadline = time.monotonic() + 120
        while not list(progress.parent.glob(progress.name + ".*.partial")):
            assert first.poll() is None, "snakemake ended before the job started"
            assert time.monotonic() < deadline, "the job never wrote its first chunk"
            time.sleep(0.2)
        first.kill()  # only snakemake itself, as a lost login session would
        first.wait(timeout=30)
        lock = progress.with_name(progress.name + ".lock")
        assert lock.exists()
        holder = int(re.search(r'"pid": (\d+)', lock.read_text())[1])
        os.kill(holder, 0)  # the job is alive, orphaned

        assert snakemake(work, "--unlock", target, config=slow).returncode == 0
        again = snakemake(work, target, "--rerun-incomplete", config=slow)
        assert again.returncode != 0
        log = (work / "logs/ppl/llada_tiny_base/ntk1/mc1000_chunk64.log").read_text()
        assert f"is being written by pid {holder} on " in log + again.stderr
    finally:
        for _ in range(50):  # the orphan and anything it started
            try:
                os.killpg(orphan_pgid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.2)
