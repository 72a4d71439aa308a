"""The benchmark generation job (stages/generation.py) on tiny demo checkpoints, CPU.

Tokenisation and decoding as the official wrapper did them, the samplers' settings as it applied
them, the random stream per official task (and across a kill and resume, and across the shards
of a Dream job, chained), the sample limit, and the score rule's check that predictions match
their prompts.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from longllada import checkpoints
from longllada.benchmarks import niah
from longllada.config import PAPER_SAMPLERS, Model, Run, uses_rng
from longllada.jobs import partials, read_jsonl, select_samples
from longllada.models import load_model, load_tokenizer
from longllada.sampling import dream as dream_sampling
from longllada.stages import generation
from longllada.stages.common import pick_device

SEED = 2025
MODELS = {"llada": ("llada", 3), "llama": ("ar", 1), "dream": ("dream", 5)}
PROSE = (
    "The committee met in the morning and discussed the budget of the coming year. "
    "Several delegates asked for more time, and the chair agreed to continue after lunch. "
)


def _model(key: str) -> Model:
    family, seed = MODELS[key]
    return Model(
        key=f"{key}_tiny_base",
        label=f"{key}-tiny",
        family=family,
        variant="base",
        t_train=256,
        rope_theta=10000.0,
        head_dim=16,
        dtype="float32",
        demo={"preset": "tiny", "seed": seed},
    )


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> dict[str, tuple[Model, Path]]:
    root = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for key in MODELS:
        model = _model(key)
        snapshot = checkpoints.build_demo(model, root / "demo_hub" / model.key)
        manifest = root / model.key / "download.json"
        checkpoints.materialize(model, snapshot, manifest)
        out[key] = (model, manifest)
    return out


def _prompts(path: Path, depths=(0, 50), repeats=2) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for d in depths:
            for k in range(repeats):
                row = {
                    "id": f"len64_depth{d}_rep{k}",
                    "length": 64,
                    "depth": d,
                    "repeat": k,
                    "prompt": PROSE * (1 + k) + f"Where is item {d}? The item is ",
                    "gold": f"item {d} is here",
                    "keyword": f"{d}",
                }
                f.write(json.dumps(row) + "\n")
    return path


def _run(model: Model, **sampler) -> Run:
    base = dict(PAPER_SAMPLERS[model.family])
    if model.family == "llada":
        base.update(steps=8, block_length=8)
    if model.family == "dream":
        base.update(steps=8)
    base.update(sampler)
    items = tuple(sorted(base.items())) if model.diffusion else ()
    return Run("niah", model.key, model.family, 1.0, items)


def _generate(
    ckpt,
    key,
    prompts,
    out,
    max_new=8,
    rng_group="depth",
    sample_range=None,
    continue_from=None,
    seed=SEED,
    **sampler,
):
    model, manifest = ckpt[key]
    return generation.run(
        model,
        _run(model, **sampler),
        {"max_new_tokens": max_new, "sample_limit": None},
        checkpoint_file=manifest,
        prompts_file=prompts,
        output=out,
        seed=seed,
        max_new_tokens=max_new,
        rng_group=rng_group,
        spread_by=rng_group,
        sample_range=sample_range,
        continue_from=continue_from,
    )


# --- tokenisation and decoding -------------------------------------------------------------------


@pytest.mark.parametrize("key", list(MODELS))
def test_prompts_are_tokenised_as_the_official_wrapper(ckpt, key: str) -> None:
    model, manifest = ckpt[key]
    tok = load_tokenizer(checkpoints.model_dir(manifest))
    text = PROSE + "The answer is "
    ids, untruncated = generation.encode_prompt(tok, text, model.family, "niah")
    if model.family == "dream":
        # Dream: the bos *string* before the raw text on NIAH and RULER, not on LongBench.
        assert ids == tok(tok.bos_token + text, add_special_tokens=True)["input_ids"]
        assert ids[0] == tok.bos_token_id
        on_ruler, _ = generation.encode_prompt(tok, text, model.family, "ruler")
        assert on_ruler == ids
        plain, _ = generation.encode_prompt(tok, text, model.family, "longbench")
        assert plain == tok(text, add_special_tokens=True)["input_ids"]
        assert plain[0] != tok.bos_token_id
    else:
        assert ids == tok(text, add_special_tokens=True)["input_ids"]
    if model.family == "ar":
        assert ids[0] == tok.bos_token_id  # LLaMA 3's post-processor adds it
    assert untruncated == len(ids)  # model_max_length as the real tokenizers': no cut


def test_a_tokenizer_limit_cuts_as_the_official_wrapper_and_is_counted(ckpt) -> None:
    _, manifest = ckpt["llama"]
    tok = load_tokenizer(checkpoints.model_dir(manifest))
    tok.model_max_length = 16
    ids, untruncated = generation.encode_prompt(tok, PROSE, "ar", "niah")
    assert len(ids) == 16 and untruncated == len(tok(PROSE)["input_ids"]) > 16


def test_decoding_skips_special_tokens_and_dream_splits_at_eos(ckpt) -> None:
    for key in MODELS:
        model, manifest = ckpt[key]
        tok = load_tokenizer(checkpoints.model_dir(manifest))
        words = tok("the budget", add_special_tokens=False)["input_ids"]
        ids = [*words, tok.eos_token_id, *words]
        text = generation.decode_answer(tok, ids, model.family)
        assert text == tok.decode(ids, skip_special_tokens=True)
        assert tok.eos_token not in text


def test_sampler_settings_as_the_wrapper_applied_them() -> None:
    llada = generation.decoding_for("llada", {"steps": 32, "block_length": 8}, 20)
    assert llada.applied["gen_length"] == 24  # rounded up to whole blocks
    assert llada.applied["steps"] == 24  # capped at the generated length
    assert not llada.uses_rng  # temperature 0, low-confidence remasking
    per_token = generation.decoding_for("llada", {"steps": "gen_length", "block_length": 64}, 100)
    assert per_token.applied["gen_length"] == 128 and per_token.applied["steps"] == 128
    dream = generation.decoding_for("dream", dict(PAPER_SAMPLERS["dream"]), 8)
    assert dream.applied["steps"] == 8 and dream.applied["gen_length"] == 8
    assert dream.applied["sampling"] == "paper" and dream.uses_rng
    ar = generation.decoding_for("ar", {}, 32)
    assert ar.applied == {"max_new_tokens": 32} and not ar.uses_rng


# --- the job -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(MODELS))
def test_generation_job_writes_every_answer_with_its_costs(ckpt, key, tmp_path) -> None:
    prompts = _prompts(tmp_path / "len64.jsonl")
    out = tmp_path / "len64.predictions.jsonl"
    record = _generate(ckpt, key, prompts, out)
    rows = list(read_jsonl(out))
    assert [r["id"] for r in rows] == [r["id"] for r in read_jsonl(prompts)]
    model, manifest = ckpt[key]
    tok = load_tokenizer(checkpoints.model_dir(manifest))
    for row, prompt in zip(rows, read_jsonl(prompts), strict=True):
        ids, _ = generation.encode_prompt(tok, prompt["prompt"], model.family, "niah")
        assert row["prompt_tokens"] == len(ids)
        assert row["seconds"] >= 0 and isinstance(row["prediction"], str)
        assert row["generated_tokens"] == 8 or (key == "llama" and row["generated_tokens"] <= 8)
        if key == "dream":
            assert row["sampling_calls"] >= 1 and "greedy_fallbacks" in row
    saved = json.loads(generation.provenance_path(out).read_text())
    assert saved == json.loads(json.dumps(record))
    assert key == "llama" or saved["settings"]["applied"]["gen_length"] == 8
    assert saved["samples"] == {
        "selected": 4,
        "range": None,
        "in_job": 4,
        "in_prompts_file": 4,
        "computed_now": 4,
    }
    assert saved["model"]["checkpoint_sha256"] and saved["seed"] == SEED
    assert not partials(out)


def test_llada_answers_equal_the_block_sampler_called_directly(ckpt, tmp_path) -> None:
    prompts = _prompts(tmp_path / "len64.jsonl", depths=(0,), repeats=1)
    out = tmp_path / "len64.predictions.jsonl"
    _generate(ckpt, "llada", prompts, out, max_new=12)  # decoded as 16 tokens, 2 blocks
    model, manifest = ckpt["llada"]
    net = load_model(checkpoints.model_dir(manifest), "llada", dtype="float32")
    tok = load_tokenizer(checkpoints.model_dir(manifest))
    from longllada.sampling import llada as llada_sampling

    text = next(read_jsonl(prompts))["prompt"]
    ids = torch.tensor([tok(text)["input_ids"]])
    s = llada_sampling.LLaDASettings(steps=8, block_length=8)
    want = llada_sampling.generate(net, ids, 16, s)
    row = next(read_jsonl(out))
    assert row["generated_tokens"] == 16
    assert row["prediction"] == tok.decode(want[0].tolist(), skip_special_tokens=True)


def _dream_reference(ckpt, prompts: Path, reseed_every_sample: bool) -> list[str]:
    """Dream's answers with a generator seeded once per depth (the official datasets), or,
    for contrast, reseeded before every sample."""
    model, manifest = ckpt["dream"]
    device = pick_device()  # where the job runs: a CUDA job draws from a CUDA generator
    net = load_model(checkpoints.model_dir(manifest), "dream", dtype="float32", device=device)
    tok = load_tokenizer(checkpoints.model_dir(manifest))
    s = dream_sampling.DreamSettings(steps=8, sampling="clean")
    g = torch.Generator(device=device)
    out, depth = [], None
    for row in read_jsonl(prompts):
        if row["depth"] != depth or reseed_every_sample:
            g.manual_seed(SEED)
            depth = row["depth"]
        ids, _ = generation.encode_prompt(tok, row["prompt"], "dream", "niah")
        new = dream_sampling.generate(net, torch.tensor([ids], device=device), 8, s, generator=g)
        out.append(generation.decode_answer(tok, new[0].tolist(), "dream"))
    return out


class Killed(RuntimeError):
    pass


def test_dream_random_stream_restarts_per_dataset_and_survives_a_kill(
    ckpt, tmp_path, monkeypatch
) -> None:
    prompts = _prompts(tmp_path / "len64.jsonl", depths=(0, 50), repeats=3)
    want = _dream_reference(ckpt, prompts, reseed_every_sample=False)
    # The test can tell streams apart: reseeding every sample gives other answers.
    assert want != _dream_reference(ckpt, prompts, reseed_every_sample=True)

    out = tmp_path / "len64.predictions.jsonl"
    real = dream_sampling.generate
    calls = []

    def dies_after_two(*args, **kwargs):
        if len(calls) == 2:  # mid-dataset: the third sample of depth 0
            raise Killed("SLURM preempted the job")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dream_sampling, "generate", dies_after_two)
    with pytest.raises(Killed):
        _generate(ckpt, "dream", prompts, out, sampling="clean")
    assert not out.exists() and len(partials(out)) == 1
    monkeypatch.setattr(dream_sampling, "generate", real)
    record = _generate(ckpt, "dream", prompts, out, sampling="clean")
    assert record["samples"]["computed_now"] == 4  # two were resumed
    assert [r["prediction"] for r in read_jsonl(out)] == want


def test_sample_limit_covers_every_depth_first() -> None:
    rows = [{"id": f"d{d}_r{k}", "depth": d} for d in (0, 50, 100) for k in range(3)]
    picked = select_samples(rows, 4, "depth")
    assert [r["id"] for r in picked] == ["d0_r0", "d0_r1", "d50_r0", "d100_r0"]
    assert select_samples(rows, None, "depth") == rows
    assert select_samples(rows, 2) == rows[:2]


def test_bad_prompts_are_named(tmp_path) -> None:
    bad = tmp_path / "len64.jsonl"
    bad.write_text('{"id": "a", "prompt": "x"}\n{"id": "b"}\n')
    with pytest.raises(generation.PromptsError, match=r"len64.jsonl: row 2 has no 'prompt'"):
        generation.read_prompts(bad)
    bad.write_text('{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n')
    with pytest.raises(generation.PromptsError, match="not unique"):
        generation.read_prompts(bad)


def test_predictions_that_do_not_match_their_prompts_are_named(tmp_path) -> None:
    prompts = _prompts(tmp_path / "len64.jsonl")
    preds = tmp_path / "len64.predictions.jsonl"
    rows = [{"id": r["id"], "prediction": "x"} for r in read_jsonl(prompts)]
    rows[-1]["id"] = "len64_depth99_rep0"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    info = {
        "model": "m",
        "setting": "ntk1",
        "family": "ar",
        "ntk_lambda": 1.0,
        "sampler": {},
        "sample_limit": None,
    }
    prepared = {
        "python": "/nonexistent",
        "versions": {},
        "cl100k_sha256": "",
        "tiktoken_cache_dir": "",
    }
    with pytest.raises(ValueError, match=r"len64.predictions.jsonl does not match .*len64.jsonl"):
        niah.score_run([prompts], [preds], [], tmp_path / "scores.json", info, prepared)
    assert not (tmp_path / "scores.json").exists()


# --- shards (RULER): a sample range per job -------------------------------------------------------


def _generate_range(ckpt, key, prompts, out, sample_range, **sampler):
    return _generate(  # RULER: one dataset per file
        ckpt, key, prompts, out, rng_group=None, sample_range=sample_range, **sampler
    )


@pytest.mark.parametrize("key", ["llama", "llada"])
def test_shards_without_random_numbers_are_independent_and_equal_the_whole_job(
    ckpt, key, tmp_path
) -> None:
    prompts = _prompts(tmp_path / "all.jsonl", depths=(0, 50), repeats=2)
    rows = list(read_jsonl(prompts))
    whole = tmp_path / "whole.predictions.jsonl"
    _generate_range(ckpt, key, prompts, whole, None)
    parts = [tmp_path / f"s{a}-{b}.predictions.jsonl" for a, b in ((0, 2), (2, 4))]
    for path, rng in zip(parts, ((0, 2), (2, 4)), strict=True):
        record = _generate_range(ckpt, key, prompts, path, rng)  # no chain
        assert record["samples"]["range"] == list(rng) and record["samples"]["in_job"] == 2
        assert record["settings"]["rng_stream"] is None and "continues" not in record["depends_on"]
    sharded = [r for p in parts for r in read_jsonl(p)]
    assert [r["id"] for r in sharded] == [r["id"] for r in rows]
    # greedy / temperature 0: no stream, so the shards equal the whole job
    assert [r["prediction"] for r in sharded] == [r["prediction"] for r in read_jsonl(whole)]


def _ruler_prompts(path: Path, n: int = 5) -> Path:
    """One (task, length) file: one official task, one stream through its samples."""
    with open(path, "w", encoding="utf-8") as f:
        for k in range(n):
            text = PROSE * (1 + k % 2) + f"Remember the number {k}. The number is "
            f.write(json.dumps({"id": f"vt_{k}", "prompt": text}) + "\n")
    return path


def _chained(ckpt, prompts, tmp_path, ranges, key="dream", rng_group=None, **kwargs):
    """The shards of one job, each continuing the stream of the one before; their files."""
    files, previous = [], None
    for a, b in ranges:
        out = tmp_path / f"all.samples{a}-{b}.predictions.jsonl"
        _generate(
            ckpt,
            key,
            prompts,
            out,
            rng_group=rng_group,
            sample_range=(a, b),
            continue_from=previous,
            **kwargs,
        )
        files.append(out)
        previous = out
    return files


STREAM_KEYS = ("id", "prediction", "rng_state", "sampling_calls", "greedy_fallbacks")


def _stream(paths) -> list[tuple]:
    return [tuple(r.get(k) for k in STREAM_KEYS) for p in paths for r in read_jsonl(p)]


def test_chained_dream_shards_draw_the_stream_of_one_unsharded_job(ckpt, tmp_path) -> None:
    prompts = _ruler_prompts(tmp_path / "4k_vt.jsonl", 5)
    whole = tmp_path / "whole.predictions.jsonl"
    _generate(ckpt, "dream", prompts, whole, rng_group=None)
    files = _chained(ckpt, prompts, tmp_path, ((0, 2), (2, 3), (3, 5)))
    assert _stream(files) == _stream([whole])  # answers and generator states, sample by sample
    records = [json.loads(generation.provenance_path(f).read_text()) for f in files]
    # the generator is seeded at the file's first sample only, never inside the (task, length)
    assert [r["settings"]["rng_stream"]["seeded_at"] for r in records] == [["vt_0"], [], []]
    assert [r["settings"]["rng_stream"]["continued_from"] for r in records] == [
        None,
        {"file": files[0].name, "samples": ["vt_1"]},
        {"file": files[1].name, "samples": ["vt_2"]},
    ]
    assert "continues" in records[1]["depends_on"] and "continues" not in records[0]["depends_on"]
    # The test tells streams apart: a shard that restarted at its first sample answers otherwise.
    tail = tmp_path / "tail.jsonl"
    tail.write_text("".join(json.dumps(r) + "\n" for r in list(read_jsonl(prompts))[2:]))
    alone = tmp_path / "tail.predictions.jsonl"
    _generate(ckpt, "dream", tail, alone, rng_group=None)
    assert _stream([alone]) != _stream(files[1:])


def test_a_killed_chained_shard_resumes_the_same_stream(ckpt, tmp_path, monkeypatch) -> None:
    prompts = _ruler_prompts(tmp_path / "4k_vt.jsonl", 5)
    whole = tmp_path / "whole.predictions.jsonl"
    _generate(ckpt, "dream", prompts, whole, rng_group=None)
    (first,) = _chained(ckpt, prompts, tmp_path, ((0, 2),))
    second = tmp_path / "all.samples2-5.predictions.jsonl"
    real = dream_sampling.generate
    calls = []

    def dies_after_one(*args, **kwargs):
        if len(calls) == 1:  # the shard's second sample: its first is in the partial file
            raise Killed("SLURM preempted the job")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dream_sampling, "generate", dies_after_one)
    with pytest.raises(Killed):
        _generate_range(ckpt, "dream", prompts, second, (2, 5), continue_from=first)
    assert not second.exists() and len(partials(second)) == 1
    monkeypatch.setattr(dream_sampling, "generate", real)
    record = _generate_range(ckpt, "dream", prompts, second, (2, 5), continue_from=first)
    assert record["samples"]["computed_now"] == 2
    assert _stream([first, second]) == _stream([whole])


def _longbench_prompts(path: Path, tasks=(3, 3, 2)) -> Path:
    """A LongBench subset whose rows name their official task (as the prompts job writes)."""
    with open(path, "w", encoding="utf-8") as f:
        k = 0
        for t, size in enumerate(tasks):
            for _ in range(size):
                text = PROSE * (1 + k % 3) + f"Question {k}: what type? Type:"
                row = {"id": f"trec_{k:04d}", "prompt": text, "oc_task": f"LongBench_trec_{t}"}
                f.write(json.dumps(row) + "\n")
                k += 1
    return path


def _generate_lb(ckpt, prompts, out, sample_range=None, continue_from=None):
    model, manifest = ckpt["dream"]
    run = dataclasses.replace(_run(model), benchmark="longbench")  # steps capped at 4
    return generation.run(
        model,
        run,
        {"sample_limit": None},
        checkpoint_file=manifest,
        prompts_file=prompts,
        output=out,
        seed=SEED,
        max_new_tokens=4,
        rng_group="oc_task",
        sample_range=sample_range,
        budget=64,
        continue_from=continue_from,
    )


def test_dream_longbench_shards_restart_at_the_official_tasks_only(ckpt, tmp_path) -> None:
    prompts = _longbench_prompts(tmp_path / "trec.jsonl", (3, 3, 2))  # tasks 0-3, 3-6, 6-8
    rows = list(read_jsonl(prompts))
    # the reference: one generator, seeded where the official task changes and nowhere else
    model, manifest = ckpt["dream"]
    device = pick_device()
    net = load_model(checkpoints.model_dir(manifest), "dream", dtype="float32", device=device)
    tok = load_tokenizer(checkpoints.model_dir(manifest))
    s = dream_sampling.DreamSettings(steps=4)
    g, task, want = torch.Generator(device=device), None, []
    for row in rows:
        if row["oc_task"] != task:
            g.manual_seed(SEED)
            task = row["oc_task"]
        ids, _ = generation.encode_prompt(tok, row["prompt"], "dream", "longbench", 64)
        new = dream_sampling.generate(net, torch.tensor([ids], device=device), 4, s, generator=g)
        want.append(generation.decode_answer(tok, new[0].tolist(), "dream"))
    whole = tmp_path / "whole.predictions.jsonl"
    _generate_lb(ckpt, prompts, whole)
    assert [r["prediction"] for r in read_jsonl(whole)] == want
    # our shard points 2 and 5 fall inside official tasks (continued), 3 and 6 inside shards
    files, previous = [], None
    for a, b in ((0, 2), (2, 5), (5, 8)):
        out = tmp_path / f"4k_trec.samples{a}-{b}.predictions.jsonl"
        record = _generate_lb(ckpt, prompts, out, (a, b), previous)
        stream = record["settings"]["rng_stream"]
        assert stream["seeded_at"] == [
            r["id"] for r in rows[a:b] if r["id"] in ("trec_0000", "trec_0003", "trec_0006")
        ]
        assert stream["continued_from"] == (
            None if previous is None else {"file": previous.name, "samples": [rows[a - 1]["id"]]}
        )
        files.append(out)
        previous = out
    assert _stream(files) == _stream([whole])
    # a shard point on a task boundary needs no state: the shard reseeds, chained or not
    at_boundary = tmp_path / "4k_trec.samples3-8.predictions.jsonl"
    record = _generate_lb(ckpt, prompts, at_boundary, (3, 8))
    assert record["settings"]["rng_stream"] == {
        "seeded_at": ["trec_0003", "trec_0006"],
        "continued_from": None,
    }
    assert _stream([at_boundary]) == _stream([whole])[3:]


def test_a_broken_chain_is_named(ckpt, tmp_path) -> None:
    prompts = _ruler_prompts(tmp_path / "4k_vt.jsonl", 5)
    first, second = _chained(ckpt, prompts, tmp_path, ((0, 2), (2, 3)))
    third = tmp_path / "all.samples3-5.predictions.jsonl"
    # no previous shard: a Dream shard inside the stream cannot start it anew
    with pytest.raises(generation.ChainError, match=r"continue the random stream of sample 'vt_2'"):
        _generate_range(ckpt, "dream", prompts, third, (3, 5))
    # the wrong previous shard: both files named
    with pytest.raises(generation.ChainError) as info:
        _generate_range(ckpt, "dream", prompts, third, (3, 5), continue_from=first)
    message = str(info.value)
    assert str(third) in message and str(first) in message
    assert "holds samples 0-2, so it is not the shard just before this one" in message
    # the shard before, but generated under another seed
    (tmp_path / "seed7").mkdir()
    seed7 = None
    for a, b in ((0, 2), (2, 3)):
        out = tmp_path / "seed7" / f"all.samples{a}-{b}.predictions.jsonl"
        _generate_range(ckpt, "dream", prompts, out, (a, b), continue_from=seed7, seed=7)
        seed7 = out
    with pytest.raises(generation.ChainError, match="another seed, sampler or rng_group"):
        _generate_range(ckpt, "dream", prompts, third, (3, 5), continue_from=seed7)
    # a previous shard that is not there
    with pytest.raises(generation.ChainError, match="does not exist"):
        _generate_range(ckpt, "dream", prompts, third, (3, 5), continue_from=tmp_path / "no.jsonl")
    assert not third.exists() and not partials(third)
    # the right one
    _generate_range(ckpt, "dream", prompts, third, (3, 5), continue_from=second)
    assert third.exists()


def test_rows_without_the_rng_group_field_are_named(ckpt, tmp_path) -> None:
    prompts = _ruler_prompts(tmp_path / "trec.jsonl", 2)
    out = tmp_path / "4k_trec.samples0-2.predictions.jsonl"
    with pytest.raises(generation.PromptsError, match=r"without the field 'oc_task'.*remake"):
        _generate(ckpt, "dream", prompts, out, rng_group="oc_task")


@pytest.mark.parametrize(
    ("family", "sampler"),
    [
        ("dream", {}),
        ("dream", {"temperature": 0.0}),
        ("dream", {"temperature": 0.0, "alg": "origin"}),
        ("llada", {}),
        ("llada", {"temperature": 0.5}),
        ("llada", {"remasking": "random"}),
        ("ar", {}),
    ],
)
def test_which_runs_are_chained_agrees_with_the_sampler(family, sampler) -> None:
    """config.uses_rng (which runs' shards the workflow chains) says what decoding_for does."""
    settings = {**PAPER_SAMPLERS[family], **sampler}
    if family == "ar":
        settings = {}
    run = Run("ruler", "m", family, 1.0, tuple(sorted(settings.items())))
    assert uses_rng(run) == generation.decoding_for(family, settings, 16).uses_rng


def test_a_shard_outside_the_selected_samples_is_named(ckpt, tmp_path) -> None:
    prompts = _prompts(tmp_path / "all.jsonl", depths=(0,), repeats=2)
    out = tmp_path / "bad.predictions.jsonl"
    with pytest.raises(generation.PromptsError, match=r"samples 1-5 are not a range of its 2"):
        _generate_range(ckpt, "llama", prompts, out, (1, 5))
    assert not out.exists() and not partials(out)


# --- LongBench: the prompt cut to the context's budget in the model's own tokens -----------------


@pytest.mark.parametrize("key", list(MODELS))
def test_longbench_prompts_lose_their_middle_in_model_tokens(ckpt, key: str) -> None:
    model, manifest = ckpt[key]
    tok = load_tokenizer(checkpoints.model_dir(manifest))
    text = PROSE * 4 + "Answer: "
    whole = tok(text, add_special_tokens=True)["input_ids"]
    budget = 41  # odd: the tail keeps ceil(41 / 2)
    assert len(whole) > budget
    ids, before = generation.encode_prompt(tok, text, model.family, "longbench", budget)
    assert before == len(whole) and ids == whole[:20] + whole[-21:]
    short, n = generation.encode_prompt(tok, "Short.", model.family, "longbench", budget)
    assert short == tok("Short.", add_special_tokens=True)["input_ids"] and n == len(short)
    if model.family == "ar":
        assert ids[0] == tok.bos_token_id  # LLaMA 3's BOS stays first
    if model.family == "dream":  # the official drop-middle path: no bos string; the option adds it
        assert ids[0] != tok.bos_token_id
        with_bos, m = generation.encode_prompt(tok, text, "dream", "longbench", budget, True)
        assert with_bos[0] == tok.bos_token_id and m == len(whole) + 1


@pytest.mark.parametrize("dream_bos", [False, True])
def test_longbench_job_records_both_lengths_and_what_it_applied(ckpt, tmp_path, dream_bos) -> None:
    model, manifest = ckpt["dream"]
    prompts = tmp_path / "trec.jsonl"
    with open(prompts, "w", encoding="utf-8") as f:
        for i, text in enumerate([PROSE * 4 + "Type:", "Question: who? Type:"]):
            f.write(json.dumps({"id": f"trec_{i:04d}", "subset": "trec", "prompt": text}) + "\n")
    out = tmp_path / "4k_trec.samples0-2.predictions.jsonl"
    run = Run("longbench", model.key, "dream", 1.0, tuple(sorted({"steps": "gen_length"}.items())))
    record = generation.run(
        model,
        run,
        {"sample_limit": None, "dream_bos": dream_bos},
        checkpoint_file=manifest,
        prompts_file=prompts,
        output=out,
        seed=SEED,
        max_new_tokens=4,
        budget=48,
    )
    rows = list(read_jsonl(out))
    assert [r["truncated"] for r in rows] == [True, False]
    assert rows[0]["prompt_tokens"] == 48 < rows[0]["prompt_tokens_before_truncation"]
    assert rows[1]["prompt_tokens"] == rows[1]["prompt_tokens_before_truncation"]
    settings = record["settings"]
    assert settings["truncation"] == {"drop_middle": 48}
    assert settings["dream_bos_string"] is dream_bos
    assert settings["applied"]["steps"] == 4  # steps = the answer's length
    assert record["totals"]["truncated_prompts"] == 1


def test_a_budget_smaller_than_the_template_is_named(ckpt, tmp_path) -> None:
    model, manifest = ckpt["llama"]
    prompts = tmp_path / "qasper.jsonl"
    template = "Answer the question from the article below, briefly. Article: \n\nQuestion: "
    row = {"id": "qasper_0000", "prompt": template + PROSE, "template_prompt": template}
    prompts.write_text(json.dumps(row) + "\n")
    out = tmp_path / "1k_qasper.samples0-1.predictions.jsonl"
    with pytest.raises(generation.PromptsError, match=r"qasper\.jsonl: budget of 8 tokens is "):
        generation.run(
            model,
            Run("longbench", model.key, "ar", 1.0, ()),
            {"sample_limit": None},
            checkpoint_file=manifest,
            prompts_file=prompts,
            output=out,
            seed=SEED,
            max_new_tokens=4,
            budget=8,
        )
    assert not out.exists() and not partials(out)
