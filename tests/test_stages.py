"""The GPU stages' rule bodies (stages/perplexity.py, stages/qk_states.py) end to end on CPU.

Tiny demo checkpoints (LLaDA, LLaMA, Dream layouts) are built once per module and go through
the same manifest (download.json) a hub download writes; the document is the bundled demo
corpus in LongBench jsonl form.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from longllada import checkpoints, likelihood
from longllada.config import Model, Run
from longllada.files import read_json
from longllada.jobs import partials, read_jsonl
from longllada.rope import read_rope
from longllada.stages import perplexity, qk_states
from longllada.stages.common import NonFiniteError

SEED = 2025
CHUNK = 64
MAX_TOKENS = 320  # 4 chunks: prompts of 64, 128, 192, 256 tokens
PPL = {"max_tokens": MAX_TOKENS, "chunk": CHUNK, "mc_draws": 2, "estimator": "official_mc"}
QK = {"length": 96, "stride": 2}
# config/demo.yaml's entries: (family, demo seed, t_train)
MODELS = {"llada": ("llada", 3, 256), "llama": ("ar", 1, 512), "dream": ("dream", 5, 256)}


def _model(key: str) -> Model:
    family, seed, t_train = MODELS[key]
    return Model(
        key=f"{key}_tiny_base",
        label=f"{key}-tiny",
        family=family,
        variant="base",
        t_train=t_train,
        rope_theta=10000.0,
        head_dim=16,
        dtype="float32",
        demo={"preset": "tiny", "seed": seed},
    )


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> dict[str, tuple[Model, Path]]:
    """key -> (config entry, its download.json), built as the demo_checkpoint + download rules
    do."""
    root = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for key in MODELS:
        model = _model(key)
        snapshot = checkpoints.build_demo(model, root / "demo_hub" / model.key)
        manifest = root / model.key / "download.json"
        checkpoints.materialize(model, snapshot, manifest)
        out[key] = (model, manifest)
    return out


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> Path:
    text = resources.files("longllada").joinpath("data/demo_corpus.txt").read_text("utf-8")
    path = tmp_path_factory.mktemp("data") / "document.jsonl"
    path.write_text(json.dumps({"context": text}) + "\n", encoding="utf-8")
    return path


def _run(benchmark: str, model: Model) -> Run:
    return Run(benchmark=benchmark, model=model.key, family=model.family, ntk_lambda=1.0)


def _ppl(ckpt, key: str, document: Path, output: Path, settings=None) -> dict:
    model, manifest = ckpt[key]
    return perplexity.run(
        model,
        _run("ppl", model),
        dict(settings or PPL),
        checkpoint_file=manifest,
        document=document,
        output=output,
        seed=SEED,
    )


_MC_CHUNK_LOSS = likelihood.mc_chunk_loss  # the real one, whatever a test patches in


class Killed(RuntimeError):
    """Stands for SLURM killing the job."""


def _count_chunks(monkeypatch, fail_after: int | None = None) -> list[int]:
    """Wrap likelihood.mc_chunk_loss: record each chunk index, raise after `fail_after` calls."""
    calls: list[int] = []

    def wrapper(model, ids, i, *args, **kwargs):
        if fail_after is not None and len(calls) >= fail_after:
            raise Killed(f"killed before chunk {i}")
        calls.append(i)
        return _MC_CHUNK_LOSS(model, ids, i, *args, **kwargs)

    monkeypatch.setattr(likelihood, "mc_chunk_loss", wrapper)
    return calls


# ---------------------------------------------------------------------------------- perplexity


def test_diffusion_ppl_writes_curve_and_chunks(ckpt, document, tmp_path, monkeypatch):
    calls = _count_chunks(monkeypatch)
    out = tmp_path / "mc2_chunk64.json"
    result = _ppl(ckpt, "llada", document, out)

    n_chunks = MAX_TOKENS // CHUNK - 1
    assert calls == list(range(n_chunks))
    saved = read_json(out)
    assert saved["curve"] == result["curve"]
    assert [r["context_tokens"] for r in saved["curve"]] == [64, 128, 192, 256]
    assert all(math.isfinite(r["ppl"]) and r["ppl"] > 1 for r in saved["curve"])
    chunks = list(read_jsonl(perplexity.chunk_progress_path(out)))
    assert [c["id"] for c in chunks] == list(range(n_chunks))
    assert [c["context_tokens"] for c in chunks] == [64, 128, 192, 256]
    assert saved["curve"] == likelihood.mc_ppl_curve([c["loss"] for c in chunks], CHUNK)
    assert not partials(perplexity.chunk_progress_path(out))
    prov = saved["provenance"]
    assert prov["stage"] == "perplexity" and prov["seed"] == SEED
    assert prov["model"]["key"] == "llada_tiny_base"
    assert prov["settings"]["setting"] == "ntk1" and prov["settings"]["dtype"] == "float32"
    assert prov["rope"] == {"ntk_lambda": 1.0}


def test_killed_diffusion_ppl_resumes_remaining_chunks_exactly(
    ckpt, document, tmp_path, monkeypatch
):
    reference = _ppl(ckpt, "llada", document, tmp_path / "reference" / "mc2_chunk64.json")

    out = tmp_path / "resumed" / "mc2_chunk64.json"
    progress = perplexity.chunk_progress_path(out)
    k = 2
    done = _count_chunks(monkeypatch, fail_after=k)
    with pytest.raises(Killed):
        _ppl(ckpt, "llada", document, out)
    assert done == [0, 1]
    assert not out.exists() and not progress.exists()
    (part,) = partials(progress)
    partial = list(read_jsonl(part))
    assert [row["id"] for row in partial[1:]] == [0, 1]  # after the settings header

    rerun = _count_chunks(monkeypatch)
    result = _ppl(ckpt, "llada", document, out)
    assert rerun == [2, 3]  # only the chunks the killed run had not finished
    assert result["curve"] == reference["curve"]  # exactly: per-chunk seeds, no tolerance
    assert read_json(out)["curve"] == reference["curve"]
    assert not partials(progress)


def _killed_then_rerun(monkeypatch, run_ppl, change) -> list[int]:
    """Kill a diffusion PPL job after two chunks, `change()` an input, rerun: the chunks the
    rerun computes."""
    _count_chunks(monkeypatch, fail_after=2)
    with pytest.raises(Killed):
        run_ppl()
    change()
    rerun = _count_chunks(monkeypatch)
    run_ppl()
    return rerun


def test_changed_document_is_not_resumed(ckpt, document, tmp_path, monkeypatch):
    """Finding 2: the document's text changes at the same path while a job is half done."""
    doc = tmp_path / "document.jsonl"
    doc.write_bytes(document.read_bytes())
    out = tmp_path / "mc2_chunk64.json"
    progress = perplexity.chunk_progress_path(out)

    def edit() -> None:
        text = json.loads(doc.read_text())["context"]
        doc.write_text(json.dumps({"context": "An edited opening. " + text}) + "\n")

    rerun = _killed_then_rerun(monkeypatch, lambda: _ppl(ckpt, "llada", doc, out), edit)
    assert rerun == [0, 1, 2, 3]  # nothing of the old text's chunks reused
    (old,) = partials(progress)  # the old text's two chunks are kept, under their own name
    header = next(read_jsonl(old))["_settings"]
    assert (
        header["inputs"]["document"]
        != read_json(out)["provenance"]["depends_on"]["inputs"]["document"]
    )
    fresh = _ppl(ckpt, "llada", doc, tmp_path / "fresh" / "mc2_chunk64.json")
    assert read_json(out)["curve"] == fresh["curve"]


def test_replaced_local_weights_are_not_resumed(document, tmp_path, monkeypatch):
    """Finding 2: a local_dir checkpoint's weights are replaced while a job is half done;
    Snakemake reruns the download check (its fingerprint holds the files' size and mtime),
    whose manifest then heads the partial."""
    from longllada import fingerprints

    local = tmp_path / "my_checkpoint"
    demo_model = _model("llada")
    checkpoints.build_demo(demo_model, local)
    model = Model(**{**demo_model.__dict__, "demo": None, "local_dir": str(local)})
    manifest = tmp_path / "ckpt" / "download.json"
    checkpoints.materialize(model, local, manifest)
    state = fingerprints.download(model)
    out = tmp_path / "mc2_chunk64.json"

    def run_ppl() -> dict:
        return perplexity.run(
            model, _run("ppl", model), dict(PPL), manifest, document, out, seed=SEED
        )

    def replace_weights() -> None:
        other = Model(**{**demo_model.__dict__, "demo": {"preset": "tiny", "seed": 99}})
        checkpoints.build_demo(other, tmp_path / "other")
        for shard in (tmp_path / "other").glob("*.safetensors"):
            shard.replace(local / shard.name)
        assert fingerprints.download(model) != state  # what makes Snakemake rerun download
        checkpoints.materialize(model, local, manifest)

    assert _killed_then_rerun(monkeypatch, run_ppl, replace_weights) == [0, 1, 2, 3]


def _nan_checkpoint(tmp_path: Path, key: str) -> tuple[Model, Path]:
    """A demo checkpoint whose first layer's weights are NaN, through the download check."""
    from safetensors.torch import load_file, save_file

    model = _model(key)
    snapshot = checkpoints.build_demo(model, tmp_path / "nan_hub")
    shard = sorted(snapshot.glob("*.safetensors"))[0]
    tensors = load_file(shard)
    name = next(n for n in tensors if "embed" in n or "wte" in n)
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, shard, metadata={"format": "pt"})
    manifest = tmp_path / "nan" / "download.json"
    checkpoints.materialize(model, snapshot, manifest)
    return model, manifest


@pytest.mark.parametrize(
    ("key", "message"), [("llada", "the loss of chunk 0"), ("llama", "perplexity at 64 tokens")]
)
def test_nan_weights_stop_the_job(document, tmp_path, key, message):
    """Finding 4: a NaN checkpoint used to give a NaN curve, exit 0, written as `NaN`."""
    model, manifest = _nan_checkpoint(tmp_path, key)
    out = tmp_path / "out.json"
    with pytest.raises(NonFiniteError, match=rf"^{model.key}: {message}"):
        perplexity.run(model, _run("ppl", model), dict(PPL), manifest, document, out, seed=SEED)
    assert not out.exists()


def test_nan_weights_stop_the_qk_job(document, tmp_path):
    model, manifest = _nan_checkpoint(tmp_path, "llada")
    out = tmp_path / "len96.npz"
    with pytest.raises(NonFiniteError, match=rf"^{model.key}: final-layer"):
        qk_states.run(model, _run("qk_states", model), QK, manifest, document, 0, out, seed=SEED)
    assert not out.exists()


def test_causal_ppl_for_llama(ckpt, document, tmp_path):
    from longllada.models import load_model, load_tokenizer

    out = tmp_path / "causal_chunk64.json"
    result = _ppl(ckpt, "llama", document, out)
    curve = read_json(out)["curve"]
    assert curve == result["curve"]
    assert [r["context_tokens"] for r in curve] == [64, 128, 192, 256]
    assert not perplexity.chunk_progress_path(out).exists()

    # The same numbers straight from the estimator, on max_tokens + 1 tokens.
    model_dir = checkpoints.model_dir(ckpt["llama"][1])
    net, tok = load_model(model_dir, "ar"), load_tokenizer(model_dir)
    text = json.loads(document.read_text())["context"]
    ids = torch.tensor(tok(text)["input_ids"][: MAX_TOKENS + 1])
    with torch.no_grad():
        expected = likelihood.causal_ppl_curve(net, ids, every=CHUNK)
    assert [r["context_tokens"] for r in expected] == [64, 128, 192, 256]
    assert [r["ppl"] for r in curve] == pytest.approx([r["ppl"] for r in expected], rel=1e-6)


@pytest.mark.parametrize(("key", "needed"), [("llada", CHUNK + 1), ("llama", CHUNK + 2)])
def test_document_shorter_than_one_chunk_names_token_counts(ckpt, tmp_path, key, needed):
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"context": "Only a few words here."}) + "\n")
    out = tmp_path / "out.json"
    with pytest.raises(ValueError, match=rf"has \d+ tokens .* needs at least {needed}\b"):
        _ppl(ckpt, key, short, out)
    assert not out.exists()
    assert not partials(perplexity.chunk_progress_path(out))


def _document_of(ckpt, key: str, document: Path, n_tokens: int, tmp_path: Path) -> Path:
    """A prefix of the demo document holding exactly `n_tokens` tokens of `key`'s tokenizer
    (special tokens included, as the official scripts count)."""
    from longllada.models import load_tokenizer

    tok = load_tokenizer(checkpoints.model_dir(ckpt[key][1]))
    text = json.loads(document.read_text())["context"]
    enc = tok(text, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    # Cut the text where a token ends; re-tokenising the cut text must give the same count.
    for cut in range(n_tokens, len(ids)):
        prefix = text[: offsets[cut - 1][1]]
        if len(tok(prefix)["input_ids"]) == n_tokens:
            path = tmp_path / f"{key}_{n_tokens}.jsonl"
            path.write_text(json.dumps({"context": prefix}) + "\n", encoding="utf-8")
            return path
    raise AssertionError(f"no prefix of {n_tokens} tokens")


def test_short_document_llama_as_the_official_script(ckpt, document, tmp_path):
    """300 tokens < max_tokens + 1: the official script feeds (300 // 64) * 64 + 1 = 257 tokens
    and reports 64..192, as the paper's 16,108-token document gives 16,065 and 64..16,000."""
    doc = _document_of(ckpt, "llama", document, 300, tmp_path)
    result = _ppl(ckpt, "llama", doc, tmp_path / "causal_chunk64.json")
    assert [r["context_tokens"] for r in result["curve"]] == [64, 128, 192]
    assert result["document_tokens"] == {"document": 300, "used": 257, "points": 3}
    assert result["provenance"]["document_tokens"] == result["document_tokens"]


@pytest.mark.parametrize(
    ("n_tokens", "points", "last_answer"),
    [(290, 4, 290 - 256), (250, 3, 250 - 192), (320, 4, CHUNK)],
)
def test_short_document_llada_as_the_official_loop(
    ckpt, document, tmp_path, monkeypatch, n_tokens, points, last_answer
):
    """The official loop scores chunk i's answer ids[64 (i + 1) : 64 (i + 2)]: a document ending
    inside it gets a shorter last answer; a chunk with no answer token is not scored (the
    official script failed there)."""
    answers: list[int] = []
    real = likelihood.masked_losses

    def spy(model, seq, prompt_len, masks, *args, **kwargs):
        answers.append(len(seq) - prompt_len)
        assert masks.shape[1] == len(seq) - prompt_len
        return real(model, seq, prompt_len, masks, *args, **kwargs)

    monkeypatch.setattr(likelihood, "masked_losses", spy)
    doc = _document_of(ckpt, "llada", document, n_tokens, tmp_path)
    result = _ppl(ckpt, "llada", doc, tmp_path / "mc2_chunk64.json")
    assert [r["context_tokens"] for r in result["curve"]] == [64 * (i + 1) for i in range(points)]
    assert answers == [CHUNK] * (points - 1) + [last_answer]
    assert result["document_tokens"]["document"] == n_tokens
    assert result["document_tokens"]["points"] == points


# ---------------------------------------------------------------------------------- Q/K states


def _rotate(x: np.ndarray, positions: np.ndarray, theta: float, head_dim: int) -> np.ndarray:
    """RoPE by hand, rotate_half layout (pairs j, j + d/2), on [n, heads * head_dim]."""
    n = x.shape[0]
    x = x.astype(np.float64).reshape(n, -1, head_dim)
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = positions[:, None].astype(np.float64) * inv_freq[None]
    angles = np.concatenate([angles, angles], axis=-1)[:, None, :]  # [n, 1, d]
    half = head_dim // 2
    rotated_half = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return (x * np.cos(angles) + rotated_half * np.sin(angles)).reshape(n, -1)


def _qk(ckpt, key: str, document: Path, tmp_path: Path) -> tuple[dict, dict]:
    model, manifest = ckpt[key]
    out = tmp_path / "qk" / f"{key}.npz"
    out.parent.mkdir(parents=True)  # Snakemake creates the output directory
    qk_states.run(
        model,
        _run("qk_states", model),
        dict(QK),
        checkpoint_file=manifest,
        document=document,
        document_index=0,
        output=out,
        seed=SEED,
    )
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary left
    with np.load(out) as npz:
        data = {name: npz[name] for name in npz.files}
    config = json.loads((checkpoints.model_dir(manifest) / "config.json").read_text())
    return data, config


def _check_layout(data: dict, heads: int, kv_heads: int, head_dim: int) -> np.ndarray:
    n = QK["length"] // QK["stride"]
    assert set(data) == {"q_pre", "k_pre", "q_post", "k_post", "positions", "provenance"}
    positions = data["positions"]
    assert positions.tolist() == list(range(0, QK["length"], QK["stride"]))
    for name in ("q_pre", "q_post"):
        assert data[name].shape == (n, heads * head_dim) and data[name].dtype == np.float16
    for name in ("k_pre", "k_post"):
        assert data[name].shape == (n, kv_heads * head_dim) and data[name].dtype == np.float16
    for name in ("q_pre", "k_pre", "q_post", "k_post"):
        assert np.isfinite(data[name]).all() and np.abs(data[name]).max() > 0
    prov = json.loads(str(data["provenance"]))
    assert prov["stage"] == "qk_states" and prov["seed"] == SEED
    assert prov["settings"]["benchmark"] == QK and prov["settings"]["dtype"] == "float32"
    return positions


def _assert_rope(data: dict, positions: np.ndarray, theta: float, head_dim: int) -> None:
    for q in ("q", "k"):
        pre, post = data[f"{q}_pre"], data[f"{q}_post"].astype(np.float64)
        # Inputs and outputs were stored in fp16: compare within fp16 rounding.
        np.testing.assert_allclose(
            _rotate(pre, positions, theta, head_dim), post, rtol=2e-3, atol=2e-3
        )
        # Not a vacuous match: positions > 0 are really rotated, and by this theta.
        assert np.abs(post[1:] - pre[1:]).max() > 1e-2
        wrong = _rotate(pre, positions, 2 * theta, head_dim)
        assert not np.allclose(wrong, post, rtol=2e-3, atol=2e-3)


def test_qk_states_llada(ckpt, document, tmp_path):
    data, config = _qk(ckpt, "llada", document, tmp_path)
    theta, head_dim = read_rope(config)
    assert (theta, head_dim) == (10000.0, 16)
    positions = _check_layout(data, config["n_heads"], config["n_kv_heads"], head_dim)
    _assert_rope(data, positions, theta, head_dim)


def test_qk_states_llama_gqa(ckpt, document, tmp_path):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import (
        LlamaRotaryEmbedding,
        apply_rotary_pos_emb,
    )

    data, config = _qk(ckpt, "llama", document, tmp_path)
    theta, head_dim = read_rope(config)
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    assert kv_heads < heads  # the demo LLaMA is GQA, like LLaMA-3-8B
    positions = _check_layout(data, heads, kv_heads, head_dim)
    _assert_rope(data, positions, theta, head_dim)

    # And transformers' own rotary at the kept positions gives the stored post-RoPE states.
    rotary = LlamaRotaryEmbedding(LlamaConfig.from_dict(config))
    q = torch.from_numpy(data["q_pre"].astype(np.float32))
    k = torch.from_numpy(data["k_pre"].astype(np.float32))
    cos, sin = rotary(q[None], torch.from_numpy(positions)[None])

    def heads_first(x: torch.Tensor) -> torch.Tensor:  # [n, H*D] -> [1, H, n, D]
        return x.view(x.shape[0], -1, head_dim).transpose(0, 1)[None]

    q_rot, k_rot = apply_rotary_pos_emb(heads_first(q), heads_first(k), cos, sin)
    for rot, name in ((q_rot, "q_post"), (k_rot, "k_post")):
        flat = rot[0].transpose(0, 1).reshape(len(positions), -1).numpy()
        np.testing.assert_allclose(flat, data[name].astype(np.float32), rtol=2e-3, atol=2e-3)


def test_qk_states_dream(ckpt, document, tmp_path):
    data, config = _qk(ckpt, "dream", document, tmp_path)
    theta, head_dim = read_rope(config)
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    positions = _check_layout(data, heads, kv_heads, head_dim)
    _assert_rope(data, positions, theta, head_dim)
