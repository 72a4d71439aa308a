"""`snakemake --profile slurm` on a real one-node SLURM cluster (tests/slurm_cluster.py).

The demo DAG (a scaled-up perplexity job, see TEST_CONFIG) runs through the repository's
`slurm` profile from the root of a copy of the repository, with the site knobs set the way a
user sets them (LONGLLADA_SLURM_* on the command line) and one overlay profile that only makes
the plugin poll every second instead of every 40 s. Mid-way through the diffusion perplexity
job, the test cancels it with scancel; the profile's retries resubmit it and it resumes from its
per-chunk checkpoint. SLURM's own records (sacct, with slurmdbd) must show every job as an
sbatch job of this run, GPUs for the GPU rules only, and no job for the local rules; the
outputs must equal those of a local `--cores 2` run of the same config in another copy.

Skips (with the reason) where SLURM cannot run: not root, or the packages cannot be installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import repo_copy
import slurm_cluster
import yaml

from longllada import budget
from longllada.config import Study
from longllada.jobs import partials

SNAKEMAKE = repo_copy.SNAKEMAKE
pytestmark = pytest.mark.slow

TEST_CONFIG = "config/slurm_test.yaml"
# The demo's PPL job takes a fraction of a second; 16 chunks of 32 draws take ~10 s, long
# enough to cancel it after its first chunks.
PPL = {"max_tokens": 1088, "chunk": 64, "mc_draws": 32}
N_CHUNKS = PPL["max_tokens"] // PPL["chunk"] - 1
DIFFUSION = f"results/ppl/llada_tiny_base/ntk1/mc{PPL['mc_draws']}_chunk{PPL['chunk']}"
# The site knobs of slurm/config.yaml, as a user overrides them for one run.
KNOBS = {
    "LONGLLADA_SLURM_PARTITION": "gpu",
    "LONGLLADA_SLURM_CPU_PARTITION": "cpu",
    "LONGLLADA_SLURM_ACCOUNT": "root",
    "LONGLLADA_SLURM_GPU_MODEL": "fake",
    "LONGLLADA_SLURM_JOBS": "4",
    "LONGLLADA_SLURM_CPUS_PER_GPU": "1",
    "LONGLLADA_SLURM_GPU_MEM_MB": "2000",
}
# Test-only settings on top of the profile: seconds-long jobs, a local file system.
OVERLAY = {
    "slurm-init-seconds-before-status-checks": 1,
    "seconds-between-status-checks": 1,
    "latency-wait": 5,
}
GPU_RULES = {"perplexity_diffusion", "perplexity_causal", "qk_states"}  # in the demo DAG
CPU_RULES = {"figure_perplexity", "figure_tsne"}
PAPER_GPU_RULES = GPU_RULES | {"niah_generate", "longbench_generate", "ruler_generate", "verify"}
LOCAL_RULES = {"demo_checkpoint", "download", "rope_patch", "figure_rope_coverage"}
SNAKEMAKE_TIMEOUT = 300  # s, per snakemake call


def copy_repo(dst: Path) -> Path:
    """A fresh-clone copy of the repository, plus the test config."""
    repo_copy.copy_repo(dst)
    config = yaml.safe_load((dst / "config/demo.yaml").read_text())
    config["benchmarks"]["ppl"].update(PPL)
    # The demo's NIAH, RULER and LongBench targets (300 small jobs) would spend the calls' time
    # limits on job submission; the DAG's SLURM behaviour is the same with the PPL, Q/K and
    # figure jobs.
    config["targets"] = {
        name: t
        for name, t in config["targets"].items()
        if not t["kind"].startswith("niah") and t["kind"] not in ("ruler_table", "longbench_table")
    }
    # LLaMA's PPL at λ 1 and 3 as well: a RoPE patch (a local rule) stays in the DAG
    config["targets"]["figure1a_perplexity"]["runs"].append(
        {"benchmark": "ppl", "models": ["llama_tiny_base"], "ntk": [{"target": 1024}]}
    )
    (dst / TEST_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    return dst


def snakemake_cmd(*args: str, timeout: int = SNAKEMAKE_TIMEOUT) -> list[str]:
    # snakemake ignores SIGTERM while it waits for jobs: KILL 10 s after the TERM
    return ["timeout", "-k", "10", str(timeout), SNAKEMAKE, *args]


def start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """A snakemake call in the background, in its own process group (see stop)."""
    with open(log, "w") as out:
        return subprocess.Popen(
            args,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=run_env(),
            start_new_session=True,
        )


def stop(proc: subprocess.Popen) -> None:
    """KILL the group (timeout, snakemake and its jobs) of a call that is still running."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGLLADA_SLURM_")}
    return {**env, **KNOBS, "PYTHONUNBUFFERED": "1"}


def sh(*cmd: str, timeout: float = 30) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=timeout).stdout


def wait_for_cancellable(proc: subprocess.Popen, progress: Path, log: Path, deadline: float) -> str:
    """The SLURM id of the diffusion PPL job once it is RUNNING with some, not all, chunks done
    (in its partial file, `<progress>.<header hash>.partial`)."""
    while time.monotonic() < deadline and proc.poll() is None:
        for line in sh("squeue", "-h", "-o", "%i|%T|%k").splitlines():
            job_id, state, comment = line.split("|", 2)
            if comment.startswith("rule_perplexity_diffusion") and state == "RUNNING":
                for partial in partials(progress):
                    with contextlib.suppress(FileNotFoundError):
                        done = len(partial.read_text().splitlines())
                        if 1 <= done <= N_CHUNKS - 4:
                            return job_id
        time.sleep(0.2)
    raise AssertionError(
        f"the diffusion job never ran with chunks left (snakemake rc {proc.poll()}):\n"
        + log.read_text()[-5000:]
    )


def test_profile_plans_the_paper_from_the_repository_root(tmp_path: Path) -> None:
    """The documented command, dry: ./slurm is found, and every job gets the knobs' resources."""
    work = copy_repo(tmp_path)
    out = subprocess.run(
        snakemake_cmd("--profile", "slurm", "-n", "all", timeout=240),
        cwd=work,
        capture_output=True,
        text=True,
        env=run_env(),
        timeout=270,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "Using profile slurm for" in out.stderr
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", text, re.M)
    total = int(re.search(r"^total\s+(\d+)$", text, re.M)[1])
    assert len(jobs) == total == 2464  # every job of the plan (README: 2,464, `all` included)
    seen = set()
    for rule, line in jobs:
        res = dict(item.split("=", 1) for item in line.split(", "))
        seen.add(rule)
        assert res["slurm_account"] == "root", (rule, res)
        if rule in PAPER_GPU_RULES:
            assert res["gpu"] == "1" and res["gpu_model"] == "fake", (rule, res)
            assert res["slurm_partition"] == "gpu" and res["cpus_per_gpu"] == "1", (rule, res)
            assert res["mem_mb"] == "2000", (rule, res)
        else:
            assert "gpu" not in res and "gpu_model" not in res, (rule, res)
            assert res["slurm_partition"] == "cpu", (rule, res)
        if rule in ("ruler_prompts", "longbench_prompts"):  # prompt_timeout_s (1800 s) + 10 min
            assert res["runtime"] == "40", (rule, res)
        elif rule.endswith(("_prompts", "_score")):
            assert res["runtime"] == "60", (rule, res)  # 60 * attempt
    assert seen > PAPER_GPU_RULES


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory):
    """The reference: the same DAG with the local executor, started first (it runs meanwhile)."""
    work = copy_repo(tmp_path_factory.mktemp("local"))
    log = work / "snakemake.log"
    args = snakemake_cmd("--cores", "2", "implemented", "--configfile", TEST_CONFIG)
    proc = start(args, work, log)
    try:
        yield work, proc, log
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, local_run):
    try:
        started = slurm_cluster.start(Path(tempfile.gettempdir()) / "longllada-slurm-test")
    except slurm_cluster.Unavailable as e:
        pytest.skip(f"cannot run SLURM on this machine: {e}")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory, local_run, cluster):
    """`snakemake --profile slurm` on the cluster; the diffusion job is cancelled mid-way."""
    work = copy_repo(tmp_path_factory.mktemp("slurm"))
    overlay = tmp_path_factory.mktemp("profile") / "slurm-test"
    overlay.mkdir()
    (overlay / "config.yaml").write_text(yaml.safe_dump(OVERLAY))
    since = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    log = work / "snakemake.log"
    args = ("--profile", "slurm", "--profile", str(overlay), "implemented")
    proc = start(snakemake_cmd(*args, "--configfile", TEST_CONFIG), work, log)
    try:
        progress = work / f"{DIFFUSION}.chunks.jsonl"
        cancelled = wait_for_cancellable(proc, progress, log, time.monotonic() + SNAKEMAKE_TIMEOUT)
        sh("scancel", cancelled)
        proc.wait(SNAKEMAKE_TIMEOUT + 30)
    finally:
        stop(proc)
    output = log.read_text()
    assert proc.returncode == 0, output[-5000:] + cluster.logs()
    fields = "JobID,JobName,Comment%200,Partition,Account,ReqTRES%80,AllocTRES%80,State,"
    fields += "Timelimit,SubmitLine%2000"
    records = sh("sacct", "-a", "-X", "-P", "-n", "-S", since, "-o", fields)
    jobs = [dict(zip(fields.split(","), r.split("|"), strict=True)) for r in records.splitlines()]
    jobs = [{k.split("%")[0]: v for k, v in job.items()} for job in jobs]
    rerun = subprocess.run(
        snakemake_cmd(*args, "-n", "--configfile", TEST_CONFIG, timeout=120),
        cwd=work,
        capture_output=True,
        text=True,
        env=run_env(),
        timeout=150,
    )
    return {
        "work": work,
        "output": output,
        "jobs": jobs,
        "cancelled": cancelled,
        "rerun": rerun,
    }


def rule_of(job: dict[str, str]) -> str:
    return re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", job["Comment"])[1]


def test_every_job_went_through_sbatch_with_the_profile(slurm_run) -> None:
    run_id = re.search(r"SLURM run ID: (\S+)", slurm_run["output"])[1]
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", slurm_run["output"]))
    jobs = slurm_run["jobs"]
    assert {j["JobID"] for j in jobs} == submitted
    assert Counter(rule_of(j) for j in jobs) == {
        "perplexity_diffusion": 2,  # cancelled, then resubmitted by the profile's retries
        "perplexity_causal": 2,
        "qk_states": 2,
        "figure_perplexity": 1,
        "figure_tsne": 1,
    }
    for job in jobs:
        rule = rule_of(job)
        assert job["JobName"] == run_id, job
        assert job["SubmitLine"].startswith("sbatch "), job
        assert job["Account"] == "root", job
        if rule in GPU_RULES:
            assert "gres/gpu=1" in job["ReqTRES"] and "gres/gpu=1" in job["AllocTRES"], job
            assert "--gpus=fake:1" in job["SubmitLine"], job
            assert "--cpus-per-gpu=1" in job["SubmitLine"], job
            assert job["Partition"] == "gpu", job
        else:
            assert rule in CPU_RULES, job
            assert "gpu" not in job["ReqTRES"] + job["AllocTRES"], job
            assert "--gpus" not in job["SubmitLine"], job
            assert job["Partition"] == "cpu", job
    # the local rules ran on the submit host, none went to SLURM
    for rule in LOCAL_RULES:
        assert f"localrule {rule}:" in slurm_run["output"]
    assert "Using profiles slurm and" in slurm_run["output"]  # found as ./slurm
    assert "Provided remote nodes: 4" in slurm_run["output"]  # LONGLLADA_SLURM_JOBS
    assert f"{slurm_run['work']}/logs/slurm/rule_" in slurm_run["output"]


def test_cancelled_job_resumed_from_its_checkpoint(slurm_run) -> None:
    work, jobs = slurm_run["work"], slurm_run["jobs"]
    diffusion = sorted(
        (j for j in jobs if rule_of(j) == "perplexity_diffusion"), key=lambda j: int(j["JobID"])
    )
    assert diffusion[0]["JobID"] == slurm_run["cancelled"]
    assert diffusion[0]["State"].startswith("CANCELLED"), diffusion[0]
    assert diffusion[1]["State"] == "COMPLETED", diffusion[1]
    log = (work / f"logs/ppl/llada_tiny_base/ntk1/{Path(DIFFUSION).name}.log").read_text()
    resumed = re.findall(r"resuming \S+: (\d+) samples already done", log)
    assert len(resumed) == 1, log
    assert 1 <= int(resumed[0]) < N_CHUNKS
    rows = [json.loads(line) for line in (work / f"{DIFFUSION}.chunks.jsonl").open()]
    assert [r["id"] for r in rows] == list(range(N_CHUNKS))
    assert not partials(work / f"{DIFFUSION}.chunks.jsonl")  # finished: no partial left
    assert not list(work.glob(f"{DIFFUSION}.chunks.jsonl.lock"))  # and no lock left
    # the retry asked for the wall time of attempt 2 (the rule's runtime scales with attempt)
    study = Study.from_file(work / TEST_CONFIG)
    run = study.run_for("ppl", "llada_tiny_base", "ntk1")
    unit = Path(DIFFUSION).name
    for attempt, job in enumerate(diffusion, 1):
        minutes = budget.slurm_runtime_minutes(study, run, unit, attempt)
        h, m, s = map(int, job["Timelimit"].split(":"))
        assert h * 60 + m == minutes and s == 0, (attempt, job)


def test_rerun_has_nothing_to_do(slurm_run) -> None:
    rerun = slurm_run["rerun"]
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def without_provenance(value):
    """A result without its provenance (host, times, SLURM job id): the numbers and names."""
    if isinstance(value, dict):
        return {k: without_provenance(v) for k, v in value.items() if k != "provenance"}
    if isinstance(value, list):
        return [without_provenance(v) for v in value]
    return value


def test_outputs_equal_a_local_run(slurm_run, local_run) -> None:
    local, proc, log = local_run
    proc.wait(SNAKEMAKE_TIMEOUT + 30)
    assert proc.returncode == 0, log.read_text()[-5000:]
    work = slurm_run["work"]
    compared = 0
    for pattern in ("results/ppl/**/*.json", "results/ppl/**/*.jsonl"):
        for theirs in sorted(local.glob(pattern)):
            ours = work / theirs.relative_to(local)
            if theirs.suffix == ".jsonl":
                a = [json.loads(line) for line in ours.open()]
                b = [json.loads(line) for line in theirs.open()]
            else:
                a, b = json.loads(ours.read_text()), json.loads(theirs.read_text())
            # bit for bit: both runs use one thread per job (OMP_NUM_THREADS=1) on this machine
            assert without_provenance(a) == without_provenance(b), ours
            compared += 1
    for theirs in sorted(local.glob("results/qk_states/**/*.npz")):
        with np.load(theirs) as b, np.load(work / theirs.relative_to(local)) as a:
            assert sorted(a.files) == sorted(b.files)
            for key in set(a.files) - {"provenance"}:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{theirs}:{key}")
        compared += 1
    assert compared == 6  # 3 PPL results, 1 chunk file, 2 Q/K dumps
    for name in ("figure1a_perplexity", "figure4_rope_position_coverage", "figure5_tsne_qk_states"):
        assert (work / f"paper_figures/{name}.pdf").read_bytes().startswith(b"%PDF")
