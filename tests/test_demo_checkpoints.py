"""The tiny demo checkpoints must look exactly like the hub ones to the loading code.

LLaMA and Dream carry the real tokenizers, built from pinned wheels (the `tokenizer_wheels`
fixture of conftest.py; tests/test_tokenizer_files.py checks them against published ids)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoTokenizer, LlamaForCausalLM

from longllada.demo import FAMILIES, MODEL_VOCAB, PRESETS, build_demo_checkpoint
from longllada.tokenizer_files import TokenizerSourceError

# Tensor names per family (MODELS.md; llama = transformers' LlamaForCausalLM).
_LAYER = r"model\.layers\.\d+\."
NAME_PATTERNS = {
    "llama": [
        r"model\.embed_tokens\.weight",
        _LAYER + r"self_attn\.[qkvo]_proj\.weight",
        _LAYER + r"mlp\.(gate|up|down)_proj\.weight",
        _LAYER + r"(input|post_attention)_layernorm\.weight",
        r"model\.norm\.weight",
        r"lm_head\.weight",
    ],
    "llada": [
        r"model\.transformer\.wte\.weight",
        r"model\.transformer\.ln_f\.weight",
        r"model\.transformer\.ff_out\.weight",
        r"model\.transformer\.blocks\.\d+\."
        r"(attn_norm|ff_norm|q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)\.weight",
    ],
    "dream": [
        r"model\.embed_tokens\.weight",
        _LAYER + r"self_attn\.[qkv]_proj\.(weight|bias)",
        _LAYER + r"self_attn\.o_proj\.weight",
        _LAYER + r"mlp\.(gate|up|down)_proj\.weight",
        _LAYER + r"(input|post_attention)_layernorm\.weight",
        r"model\.norm\.weight",
        r"lm_head\.weight",
    ],
}
MASK_TOKENS = {"llada": "<|mdm_mask|>", "dream": "<|mask|>"}
# Embedding rows of the real checkpoints, and how many tokens their tokenizers have: all of
# LLaMA-3's; LLaDA's stand-in up to its last special token; Qwen2.5's 151,665 + Dream's two.
REAL_VOCAB = {"llama": 128256, "llada": 126464, "dream": 152064}
TOKENIZER_SIZE = {"llama": 128256, "llada": 126349, "dream": 151667}
# LLaDA-8B's special tokens at their real ids (config.json, MODELS.md; see demo._LLADA_SPECIALS).
LLADA_SPECIALS = {
    "<|startoftext|>": 126080,
    "<|endoftext|>": 126081,
    "<|mdm_mask|>": 126336,
    "<|start_header_id|>": 126346,
    "<|end_header_id|>": 126347,
    "<|eot_id|>": 126348,
}
TEXT = "Rotary theta 500000 at 32768 tokens: diffusion, not autoregression!\n  Two spaces, é ü."


def _hashes(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def _tensors(d: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for shard in sorted(d.glob("*.safetensors")):
        with safe_open(shard, framework="pt") as f:
            out |= {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    return out


def _tokenizer(d: Path):
    # The llada/dream configs carry an auto_map (as on the hub) whose code is absent, so say
    # trust_remote_code=False: otherwise transformers may prompt for it on a terminal.
    return AutoTokenizer.from_pretrained(d, trust_remote_code=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tokenizer_wheels: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo")
    return {f: build_demo_checkpoint(f, root / f, **PRESETS["tiny"][f]) for f in FAMILIES}


@pytest.mark.parametrize("family", FAMILIES)
def test_deterministic_in_process(family: str, built: dict[str, Path], tmp_path: Path) -> None:
    again = build_demo_checkpoint(family, tmp_path / "again", **PRESETS["tiny"][family])
    assert _hashes(again) == _hashes(built[family])
    other = build_demo_checkpoint(family, tmp_path / "other", seed=1, **PRESETS["tiny"][family])
    changed = {k for k, v in _hashes(other).items() if _hashes(built[family])[k] != v}
    assert changed == {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_deterministic_across_processes(
    family: str, built: dict[str, Path], tmp_path: Path, tokenizer_wheels: Path
) -> None:
    # Another hash seed and thread count must not change the BPE merges (trained for LLaDA,
    # recovered from the ranks for Dream) or anything else.
    code = (
        "import sys; from pathlib import Path; from longllada.demo import PRESETS, "
        "build_demo_checkpoint as b; f = sys.argv[2]; b(f, Path(sys.argv[1]), **PRESETS['tiny'][f])"
    )
    env = os.environ | {
        "PYTHONHASHSEED": "123",
        "RAYON_NUM_THREADS": "1",
        "LONGLLADA_WHEEL_DIR": str(tokenizer_wheels.resolve()),
    }
    subprocess.run([sys.executable, "-c", code, str(tmp_path), family], check=True, env=env)
    assert _hashes(tmp_path) == _hashes(built[family])


@pytest.mark.parametrize("family", FAMILIES)
def test_layout(family: str, built: dict[str, Path]) -> None:
    d = built[family]
    index = json.loads((d / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in d.glob("*.safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert sorted(set(index["weight_map"].values())) == shards
    tensors = _tensors(d)
    assert set(index["weight_map"]) == set(tensors)
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    assert index["metadata"]["total_size"] == nbytes
    for name, t in tensors.items():
        assert any(re.fullmatch(p, name) for p in NAME_PATTERNS[family]), name
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
        if "norm" in name or "ln_f" in name:
            assert torch.equal(t, torch.ones_like(t)), name
        else:
            assert 0.01 < t.std().item() < 0.04, name

    cfg = json.loads((d / "config.json").read_text())
    tok = _tokenizer(d)
    vocab = cfg["vocab_size"]
    assert vocab == MODEL_VOCAB[family] == REAL_VOCAB[family] and vocab >= len(tok)
    if family == "llada":
        assert cfg["embedding_size"] == vocab and cfg["model_type"] == "llada"
        assert not cfg["weight_tying"] and not cfg["include_bias"] and not cfg["include_qkv_bias"]
        assert not any(n.endswith(".bias") for n in tensors)
        head, wte = (
            tensors["model.transformer.ff_out.weight"],
            tensors["model.transformer.wte.weight"],
        )
        assert head.shape == wte.shape == (vocab, cfg["d_model"]) and not torch.equal(head, wte)
        n_layers, hidden = cfg["n_layers"], cfg["d_model"]
        assert len(tensors) == 3 + 9 * n_layers
        ff_in = tensors["model.transformer.blocks.0.ff_proj.weight"]
        assert ff_in.shape == (cfg["mlp_hidden_size"], hidden)
        assert tensors["model.transformer.blocks.0.ff_out.weight"].shape == (hidden, ff_in.shape[0])
        assert cfg["rope_theta"] == 500000.0 and cfg["auto_map"]["AutoConfig"].endswith(
            "LLaDAConfig"
        )
    else:
        assert tensors["model.embed_tokens.weight"].shape == (vocab, cfg["hidden_size"])
        assert not torch.equal(tensors["lm_head.weight"], tensors["model.embed_tokens.weight"])
        biases = {n for n in tensors if n.endswith(".bias")}
        n_layers = cfg["num_hidden_layers"]
        head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
        k_shape = (cfg["num_key_value_heads"] * head_dim, cfg["hidden_size"])
        assert tensors["model.layers.0.self_attn.k_proj.weight"].shape == k_shape
    if family == "dream":
        expected = {
            f"model.layers.{i}.self_attn.{p}_proj.bias" for i in range(n_layers) for p in "qkv"
        }
        assert biases == expected
        assert cfg["model_type"] == "Dream" and cfg["architectures"] == ["DreamModel"]
        assert cfg["rope_theta"] == 1e6 and cfg["rms_norm_eps"] == 1e-6
        assert "AutoModelForCausalLM" not in cfg["auto_map"] and "AutoModel" in cfg["auto_map"]
    if family == "llama":
        assert not biases
        gen = json.loads((d / "generation_config.json").read_text())
        assert (gen["bos_token_id"], gen["eos_token_id"]) == (
            cfg["bos_token_id"],
            cfg["eos_token_id"],
        )
        # transformers 5 stores rope_theta under rope_parameters, not at the top level
        assert "rope_theta" not in cfg and cfg["rope_parameters"]["rope_theta"] == 500000.0


def test_llama_loads_in_transformers(built: dict[str, Path]) -> None:
    model, info = LlamaForCausalLM.from_pretrained(built["llama"], output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"] and not info["error_msgs"]
    assert model.config.rope_parameters["rope_theta"] == 500000.0
    ids = _tokenizer(built["llama"])(TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_tokenizer(family: str, built: dict[str, Path]) -> None:
    d = built[family]
    cfg = json.loads((d / "config.json").read_text())
    tok = _tokenizer(d)
    assert len(tok) == TOKENIZER_SIZE[family]
    ids = tok(TEXT)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == TEXT
    assert (tok.bos_token_id, tok.eos_token_id) == (cfg["bos_token_id"], cfg["eos_token_id"])
    # Only LLaMA 3 prepends bos itself; the paper prepends Dream's bos by hand.
    assert (ids[0] == tok.bos_token_id) == (family == "llama")
    if family in MASK_TOKENS:
        mask = MASK_TOKENS[family]
        assert tok.convert_tokens_to_ids(mask) == cfg["mask_token_id"]
        assert tok(mask, add_special_tokens=False)["input_ids"] == [cfg["mask_token_id"]]
        assert cfg["pad_token_id"] == cfg["eos_token_id"]
    source = json.loads((d / "tokenizer_source.json").read_text())
    assert source["family"] == family
    if family != "llada":
        assert source["wheel"].endswith(".whl") and len(source["wheel_sha256"]) == 64


def test_real_special_ids_in_the_configs(built: dict[str, Path]) -> None:
    ids = {
        f: {
            k: v
            for k, v in json.loads((built[f] / "config.json").read_text()).items()
            if k in ("bos_token_id", "eos_token_id", "pad_token_id", "mask_token_id")
        }
        for f in FAMILIES
    }
    # LlamaConfig writes pad_token_id null (Meta-Llama-3-8B has none).
    assert ids["llama"] == {"bos_token_id": 128000, "eos_token_id": 128001, "pad_token_id": None}
    assert ids["llada"] == {
        "bos_token_id": 126080,
        "eos_token_id": 126081,
        "pad_token_id": 126081,
        "mask_token_id": 126336,
    }
    assert ids["dream"] == {
        "bos_token_id": 151665,
        "eos_token_id": 151643,
        "pad_token_id": 151643,
        "mask_token_id": 151666,
    }


def test_llada_stand_in_keeps_the_real_ids(built: dict[str, Path]) -> None:
    d = built["llada"]
    tok = _tokenizer(d)
    for token, i in LLADA_SPECIALS.items():
        assert tok.convert_tokens_to_ids(token) == i
        assert tok(token, add_special_tokens=False)["input_ids"] == [i]
    # The filler between the trained BPE (448 tokens) and the special tokens is never produced
    # by encoding, not even from its own text, and decodes to that text.
    ids = tok(TEXT + " [unused500] [unused126090]", add_special_tokens=False)["input_ids"]
    assert max(ids) < 448
    assert tok.decode([500, 126090]) == "[unused500][unused126090]"
    source = json.loads((d / "tokenizer_source.json").read_text())
    assert source["special_token_ids"] == LLADA_SPECIALS and source["trained_tokens"] == 448


@pytest.mark.parametrize("family", FAMILIES)
def test_instruct_chat_template(family: str, tmp_path: Path, tokenizer_wheels: Path) -> None:
    d = build_demo_checkpoint(family, tmp_path, variant="instruct", **PRESETS["tiny"][family])
    text = _tokenizer(d).apply_chat_template(
        [{"role": "user", "content": "Where is the needle?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    if family == "dream":
        assert text.endswith(
            "<|im_start|>user\nWhere is the needle?<|im_end|>\n<|im_start|>assistant\n"
        )
    else:
        bos = "<|begin_of_text|>" if family == "llama" else "<|startoftext|>"
        assert text == (
            f"{bos}<|start_header_id|>user<|end_header_id|>\n\nWhere is the needle?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        )
    # Rebuilding as base in the same folder must not leave the instruct template behind.
    build_demo_checkpoint(family, tmp_path, **PRESETS["tiny"][family])
    assert not (tmp_path / "chat_template.jinja").exists()


def test_shard_counts_and_refusals(tmp_path: Path, tokenizer_wheels: Path) -> None:
    single = build_demo_checkpoint("llada", tmp_path / "one", n_shards=1)
    assert sorted(p.name for p in single.glob("model*")) == ["model.safetensors"]
    three = build_demo_checkpoint("llama", tmp_path / "three", n_shards=3, rope_theta=1e4)
    index = json.loads((three / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 3
    assert json.loads((three / "config.json").read_text())["rope_parameters"]["rope_theta"] == 1e4
    with pytest.raises(ValueError, match="family"):
        build_demo_checkpoint("qwen", tmp_path / "x")
    with pytest.raises(ValueError, match="kv_heads"):
        build_demo_checkpoint("dream", tmp_path / "x", kv_heads=3)
    with pytest.raises(ValueError, match="n_shards"):
        build_demo_checkpoint("llama", tmp_path / "x", n_shards=1000)
    # Without the real tokenizer's wheel: refused, naming it, before anything is written.
    with pytest.raises(TokenizerSourceError, match="dashscope-2.0.2-py3-none-any.whl"):
        build_demo_checkpoint("dream", tmp_path / "y", wheel_dir=tmp_path / "no_wheels")
    assert not (tmp_path / "y").exists()


def test_weight_files_get_the_umask_mode(built: dict[str, Path]) -> None:
    """safetensors' save_file writes 0600; the demo's files follow the umask, as results do."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for d in built.values():
        for path in d.iterdir():
            if path.is_file() and not path.name.startswith("."):
                assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
