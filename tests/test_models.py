"""Our LLaDA / Dream implementations and the strict loader, on tiny hub-layout checkpoints.

The forward passes are checked against independent reference implementations written below from
MODELS.md alone (plain float64 loops over heads and rotation pairs), so a shared misreading of the
architecture would have to be made twice, in two different styles, to go unnoticed.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from longllada import checkpoints
from longllada.config import ConfigError, Model
from longllada.demo import PRESETS, build_demo_checkpoint
from longllada.models import (
    CheckpointError,
    UnsupportedConfigError,
    load_model,
    load_tokenizer,
    loading,
)
from longllada.models.dream import DreamConfig
from longllada.models.llada import LLaDAConfig
from longllada.rope import patched_config

DIFFUSION = ("llada", "dream")
LOADER_FAMILY = {"llama": "ar", "llada": "llada", "dream": "dream"}
INDEX = "model.safetensors.index.json"


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        f: build_demo_checkpoint(f, root / f, **PRESETS["tiny"][f])
        for f in ("llama", "llada", "dream")
    }


@pytest.fixture(scope="module")
def models(ckpt: dict[str, Path]) -> dict[str, torch.nn.Module]:
    return {f: load_model(d, LOADER_FAMILY[f]) for f, d in ckpt.items()}


def _tensors(d: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for shard in sorted(d.glob("*.safetensors")):
        with safe_open(shard, framework="pt") as f:
            out |= {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    return out


def _config(d: Path) -> dict:
    return json.loads((d / "config.json").read_text())


def _ids(model: torch.nn.Module, batch: int = 2, length: int = 12, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    return torch.randint(0, vocab, (batch, length), generator=gen)


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(ids)
    return out.logits if hasattr(out, "logits") else out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_shard(d: Path, name: str, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    """Apply `edit` to the shard holding `name`, and make the index agree with the result."""
    index = json.loads((d / INDEX).read_text())
    shard = index["weight_map"][name]
    tensors = _tensors_of(d / shard)
    edit(tensors)
    save_file(tensors, str(d / shard), metadata={"format": "pt"})
    wm = {k: v for k, v in index["weight_map"].items() if v != shard}
    index["weight_map"] = wm | dict.fromkeys(tensors, shard)
    index["metadata"]["total_size"] = sum(
        sum(t.numel() * t.element_size() for t in _tensors_of(p).values())
        for p in d.glob("*.safetensors")
    )
    (d / INDEX).write_text(json.dumps(index, indent=2))


def _tensors_of(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def _patch_config(d: Path, **changes: object) -> None:
    (d / "config.json").write_text(json.dumps(_config(d) | changes, indent=2))


# --------------------------------------------------------------------------- reference models


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return w * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def _rope_ref(v: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate [L, hd] (float64): pair (j, j + hd/2) at position m turns by m * theta^(-2j/hd)."""
    length, hd = v.shape
    half = hd // 2
    out = torch.empty_like(v)
    for m in range(length):
        for j in range(half):
            a, b = v[m, j].item(), v[m, j + half].item()
            angle = m * theta ** (-2.0 * j / hd)
            out[m, j] = a * math.cos(angle) - b * math.sin(angle)
            out[m, j + half] = b * math.cos(angle) + a * math.sin(angle)
    return out


def _attention_ref(q, k, v, n_heads: int, n_kv: int, hd: int, theta: float) -> torch.Tensor:
    """Bidirectional multi-head attention on [L, *] rows; query head h reads kv head h // group."""
    group = n_heads // n_kv
    outs = []
    for h in range(n_heads):
        g = h // group
        qh = _rope_ref(q[:, h * hd : (h + 1) * hd], theta)
        kh = _rope_ref(k[:, g * hd : (g + 1) * hd], theta)
        vh = v[:, g * hd : (g + 1) * hd]
        probs = torch.softmax(qh @ kh.T / math.sqrt(hd), dim=-1)  # no mask at all
        outs.append(probs @ vh)
    return torch.cat(outs, dim=-1)


def _silu(x: torch.Tensor) -> torch.Tensor:
    return x / (1 + torch.exp(-x))


def llada_reference(w: dict[str, torch.Tensor], cfg: dict, ids: list[int]) -> torch.Tensor:
    w = {k: t.double() for k, t in w.items()}
    nh, hd = cfg["n_heads"], cfg["d_model"] // cfg["n_heads"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    x = w["model.transformer.wte.weight"][ids]
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        h = _rms(x, w[p + "attn_norm.weight"], eps)
        q, k, v = (h @ w[p + n + "_proj.weight"].T for n in "qkv")
        att = _attention_ref(q, k, v, nh, cfg["n_kv_heads"], hd, theta)
        x = x + att @ w[p + "attn_out.weight"].T
        h = _rms(x, w[p + "ff_norm.weight"], eps)
        gate, up = h @ w[p + "ff_proj.weight"].T, h @ w[p + "up_proj.weight"].T
        x = x + (_silu(gate) * up) @ w[p + "ff_out.weight"].T
    x = _rms(x, w["model.transformer.ln_f.weight"], eps)
    return x @ w["model.transformer.ff_out.weight"].T


def dream_reference(w: dict[str, torch.Tensor], cfg: dict, ids: list[int]) -> torch.Tensor:
    w = {k: t.double() for k, t in w.items()}
    nh, hd = cfg["num_attention_heads"], cfg["hidden_size"] // cfg["num_attention_heads"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    x = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = _rms(x, w[p + "input_layernorm.weight"], eps)
        q, k, v = (
            h @ w[f"{p}self_attn.{n}_proj.weight"].T + w[f"{p}self_attn.{n}_proj.bias"]
            for n in "qkv"
        )
        att = _attention_ref(q, k, v, nh, cfg["num_key_value_heads"], hd, theta)
        x = x + att @ w[p + "self_attn.o_proj.weight"].T
        h = _rms(x, w[p + "post_attention_layernorm.weight"], eps)
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (_silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    return _rms(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


REFERENCES = {"llada": llada_reference, "dream": dream_reference}


# ------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("family", ["llama", "llada", "dream"])
def test_loads_with_hub_names_and_finite_logits(family: str, ckpt, models) -> None:
    model, d = models[family], ckpt[family]
    saved = _tensors(d)
    state = model.state_dict()
    assert set(state) == set(saved)  # exactly the hub names: nothing renamed, added or dropped
    for name, t in saved.items():
        assert torch.equal(state[name], t), name
    assert not model.training
    assert not any(p.requires_grad or p.is_meta for p in model.parameters())
    assert not any(b.is_meta for b in model.buffers())
    ids = _ids(model)
    logits = _logits(model, ids)
    assert logits.shape == (*ids.shape, model.config.vocab_size)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


@pytest.mark.parametrize("family", DIFFUSION)
def test_matches_independent_reference(family: str, ckpt, models) -> None:
    model, d = models[family], ckpt[family]
    ids = _ids(model, batch=2, length=9)
    logits = _logits(model, ids)
    for b in range(ids.shape[0]):
        ref = REFERENCES[family](_tensors(d), _config(d), ids[b].tolist())
        diff = (logits[b].double() - ref).abs().max().item()
        assert diff < 1e-5, diff


def test_llada_gqa_matches_reference(tmp_path: Path) -> None:
    # The hub LLaDA has n_kv_heads == n_heads; the grouped path must still be right if used.
    kwargs = PRESETS["tiny"]["llada"] | {"kv_heads": 2}
    d = build_demo_checkpoint("llada", tmp_path / "gqa", **kwargs)
    model = load_model(d, "llada")
    assert model.config.n_kv_heads == 2
    ids = _ids(model, batch=1, length=7)
    ref = llada_reference(_tensors(d), _config(d), ids[0].tolist())
    assert (_logits(model, ids)[0].double() - ref).abs().max() < 1e-5


@pytest.mark.parametrize("family", DIFFUSION)
def test_rmsnorm_scales_after_casting_back(family: str, models) -> None:
    # fp32 normalisation, cast to the input dtype, then the weight multiply (in that dtype).
    model = models[family]
    norm = (
        _attn_module(model).attn_norm
        if family == "llada"
        else model.model.layers[0].input_layernorm
    )
    norm = copy.deepcopy(norm).to(torch.bfloat16)
    gen = torch.Generator().manual_seed(0)
    norm.weight.data = (1 + torch.randn(norm.weight.shape, generator=gen)).to(torch.bfloat16)
    x = (3 * torch.randn(4, 5, norm.weight.shape[0], generator=gen)).to(torch.bfloat16)
    xf = x.float()
    normed = (xf / torch.sqrt(xf.pow(2).mean(-1, keepdim=True) + norm.eps)).to(torch.bfloat16)
    out = norm(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, norm.weight * normed, rtol=0, atol=0)


@pytest.mark.parametrize("family", DIFFUSION)
def test_attributes(family: str, ckpt, models) -> None:
    model = models[family]
    assert model.family == family
    assert model.mask_token_id == _config(ckpt[family])["mask_token_id"]
    tok = load_tokenizer(ckpt[family])
    mask = "<|mdm_mask|>" if family == "llada" else "<|mask|>"
    assert tok.convert_tokens_to_ids(mask) == model.mask_token_id


def test_llada_mask_id_defaults_to_hub_value(ckpt) -> None:
    cfg = _config(ckpt["llada"])
    del cfg["mask_token_id"]
    assert LLaDAConfig.from_hub(cfg).mask_token_id == 126336
    cfg = _config(ckpt["dream"])
    del cfg["mask_token_id"]
    with pytest.raises(CheckpointError, match="mask_token_id"):
        DreamConfig.from_hub(cfg)


@pytest.mark.parametrize("family", DIFFUSION)
def test_logits_index_selects_rows(family: str, models) -> None:
    model = models[family]
    ids = _ids(model, batch=3, length=10)
    with torch.no_grad():
        full = model(ids)
        positions = torch.tensor([7, 0, 3, 3])
        picked = model(ids, logits_index=positions)
        mask = torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) < 0.4
        rows = model(ids, logits_index=mask)
    assert picked.shape == (3, 4, model.config.vocab_size)
    torch.testing.assert_close(picked, full[:, positions], rtol=0, atol=1e-6)
    assert rows.shape == (int(mask.sum()), model.config.vocab_size)
    torch.testing.assert_close(rows, full[mask], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        model(ids, logits_index=mask[:, :5])


@pytest.mark.parametrize("family", DIFFUSION)
def test_attention_is_bidirectional(family: str, models) -> None:
    model = models[family]
    ids = _ids(model, batch=1, length=8)
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % model.config.vocab_size
    before, after = _logits(model, ids), _logits(model, changed)
    # Every earlier position sees the last token (a causal model would leave them unchanged).
    for pos in range(ids.shape[1] - 1):
        assert not torch.allclose(before[0, pos], after[0, pos], rtol=0, atol=1e-7), pos


@pytest.mark.parametrize("family", ["llama", "llada", "dream"])
def test_rope_theta_read_from_config(family: str, ckpt, models, tmp_path: Path) -> None:
    # What the NTK patch produces: the same shards, a config.json with another rope_theta.
    d = _copy(ckpt[family], tmp_path / "patched")
    (d / "config.json").write_text(json.dumps(patched_config(_config(d), 4e6)))
    patched = load_model(d, LOADER_FAMILY[family])
    if family == "llama":
        assert patched.config.rope_parameters["rope_theta"] == 4e6
    else:
        assert patched.config.rope_theta == 4e6
    ids = _ids(patched, batch=1, length=16)
    assert not torch.allclose(_logits(patched, ids), _logits(models[family], ids))
    if family != "llama":
        ref = REFERENCES[family](_tensors(d), _config(d), ids[0].tolist())
        assert (_logits(patched, ids)[0].double() - ref).abs().max() < 1e-5


def _attn_module(model: torch.nn.Module) -> torch.nn.Module:
    """Layer 0's module holding q_proj, k_proj and rotary."""
    if model.family == "llada":
        return model.model.transformer.blocks[0]
    return model.model.layers[0].self_attn


def _rotary(model: torch.nn.Module) -> torch.nn.Module:
    return _attn_module(model).rotary


def test_llada_rope_by_hand(models) -> None:
    rotary = _rotary(models["llada"])
    hd, theta = rotary.head_dim, models["llada"].config.rope_theta
    q = torch.randn(1, 1, 6, hd, generator=torch.Generator().manual_seed(3))
    q_rot, _ = rotary(q, q)
    m, j = 5, 3  # position 5, the pair (3, 3 + hd/2)
    angle = m * theta ** (-2 * j / hd)
    a, b = q[0, 0, m, j].item(), q[0, 0, m, j + hd // 2].item()
    assert q_rot[0, 0, m, j].item() == pytest.approx(a * math.cos(angle) - b * math.sin(angle))
    assert q_rot[0, 0, m, j + hd // 2].item() == pytest.approx(
        b * math.cos(angle) + a * math.sin(angle)
    )
    # Position 0 is not rotated at all.
    torch.testing.assert_close(q_rot[..., 0, :], q[..., 0, :], rtol=0, atol=0)


@pytest.mark.parametrize("family", DIFFUSION)
def test_hooks_see_pre_and_post_rope_q(family: str, models) -> None:
    model = models[family]
    attn = _attn_module(model)
    rotary = attn.rotary
    seen: dict[str, torch.Tensor] = {}
    handles = [
        attn.q_proj.register_forward_hook(lambda m, i, o: seen.__setitem__("pre", o)),
        rotary.register_forward_hook(lambda m, i, o: seen.__setitem__("post", o[0])),
    ]
    try:
        ids = _ids(model, batch=1, length=7)
        _logits(model, ids)
    finally:
        for h in handles:
            h.remove()
    heads, hd = attn.n_heads, rotary.head_dim
    pre = seen["pre"][0].view(7, heads, hd)
    assert seen["post"].shape == (1, heads, 7, hd)
    for h in range(heads):
        manual = _rope_ref(pre[:, h].double(), rotary.theta)
        assert (seen["post"][0, h].double() - manual).abs().max() < 1e-6


@pytest.mark.parametrize("family", DIFFUSION)
def test_reduced_precision_numerics(family: str, ckpt) -> None:
    """bf16: LLaDA rotates in fp32 and rounds once; Dream rotates in bf16 with bf16 cos/sin."""
    model = load_model(ckpt[family], family, dtype="bfloat16")
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    rotary = _rotary(model)
    assert rotary.inv_freq.dtype == torch.float32
    q = torch.randn(1, 2, 9, rotary.head_dim, generator=torch.Generator().manual_seed(0))
    q = q.to(torch.bfloat16)
    q_rot, _ = rotary(q, q)
    assert q_rot.dtype == torch.bfloat16
    pos = torch.arange(9, dtype=torch.float32)
    angles = torch.outer(pos, rotary.inv_freq).repeat(1, 2)
    half = rotary.head_dim // 2
    if family == "llada":
        qf = q.float()
        swapped = torch.cat((-qf[..., half:], qf[..., :half]), dim=-1)
        want = (qf * angles.cos() + swapped * angles.sin()).to(torch.bfloat16)
    else:
        cos, sin = angles.cos().to(torch.bfloat16), angles.sin().to(torch.bfloat16)
        swapped = torch.cat((-q[..., half:], q[..., :half]), dim=-1)
        want = q * cos + swapped * sin
    assert torch.equal(q_rot, want)
    logits = _logits(model, _ids(model, batch=1, length=6))
    assert logits.dtype == torch.bfloat16  # not upcast, like the hub code
    assert torch.isfinite(logits).all()


def test_single_file_checkpoint(ckpt, models, tmp_path: Path) -> None:
    d = _copy(ckpt["llada"], tmp_path / "single")
    tensors = _tensors(d)
    for p in [*d.glob("*.safetensors"), d / INDEX]:
        p.unlink()
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    model = load_model(d, "llada")
    ids = _ids(model)
    assert torch.equal(_logits(model, ids), _logits(models["llada"], ids))


def test_attn_impl(ckpt, models) -> None:
    ids = _ids(models["dream"])
    sdpa = load_model(ckpt["dream"], "dream", attn_impl="sdpa")
    assert torch.equal(_logits(sdpa, ids), _logits(models["dream"], ids))  # auto = sdpa on CPU
    # Every loaded model names the kernel it runs (more in test_attention.py).
    for family, model in models.items():
        assert model.attention_record["impl"] == "sdpa", family
        assert model.attention_record["requested"] == "auto", family
    assert sdpa.attention_record["reason"] == "attn_impl: sdpa"
    with pytest.raises(ValueError, match="attn_impl"):
        load_model(ckpt["llada"], "llada", attn_impl="eager")


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("family", ["llada", "dream", "llama"])
def test_missing_tensor_is_named(family: str, tmp_path: Path) -> None:
    d = build_demo_checkpoint(family, tmp_path / family, **PRESETS["tiny"][family])
    victim = {
        "llada": "model.transformer.blocks.1.up_proj.weight",
        "dream": "model.layers.1.self_attn.k_proj.bias",
        "llama": "model.layers.0.mlp.up_proj.weight",
    }[family]
    _edit_shard(d, victim, lambda t: t.pop(victim))
    with pytest.raises(CheckpointError, match="missing.*" + re.escape(victim)):
        load_model(d, LOADER_FAMILY[family])


@pytest.mark.parametrize("family", ["llada", "llama"])
def test_unexpected_tensor_is_named(family: str, tmp_path: Path) -> None:
    d = build_demo_checkpoint(family, tmp_path / family, **PRESETS["tiny"][family])
    some = "model.norm.weight" if family == "llama" else "model.transformer.ln_f.weight"
    _edit_shard(d, some, lambda t: t.__setitem__("model.extra_head.weight", torch.ones(4)))
    with pytest.raises(CheckpointError, match=r"unexpected.*model\.extra_head\.weight"):
        load_model(d, LOADER_FAMILY[family])


@pytest.mark.parametrize("family", ["dream", "llama"])
def test_shape_mismatch_is_named(family: str, tmp_path: Path) -> None:
    d = build_demo_checkpoint(family, tmp_path / family, **PRESETS["tiny"][family])
    name = "model.layers.0.self_attn.v_proj.weight"
    _edit_shard(d, name, lambda t: t.__setitem__(name, torch.zeros(8, 64)))
    with pytest.raises(CheckpointError, match=r"model\.layers\.0\.self_attn\.v_proj\.weight"):
        load_model(d, LOADER_FAMILY[family])


def test_index_and_shard_disagree(ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt["llada"], tmp_path / "bad_index")
    index = json.loads((d / INDEX).read_text())
    name = "model.transformer.ln_f.weight"
    other = next(s for s in set(index["weight_map"].values()) if s != index["weight_map"][name])
    index["weight_map"][name] = other
    (d / INDEX).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"not in the shard.*ln_f"):
        load_model(d, "llada")


def test_no_weights_or_config(ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt["llada"], tmp_path / "empty")
    for p in d.glob("model*"):
        p.unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        load_model(d, "llada")
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(tmp_path / "nowhere", "llada")


def test_wrong_family_refused(ckpt) -> None:
    with pytest.raises(CheckpointError, match="model_type"):
        load_model(ckpt["dream"], "llada")
    with pytest.raises(CheckpointError, match="model_type"):
        load_model(ckpt["llada"], "dream")
    with pytest.raises(ValueError, match="family"):
        load_model(ckpt["llada"], "mamba")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("alibi", True),
        ("block_group_size", 2),
        ("attention_layer_norm", True),
        ("layer_norm_type", "default"),
        ("block_type", "sequential"),
        ("activation_type", "swiglu"),
        ("include_bias", True),
        ("include_qkv_bias", True),
        ("weight_tying", True),
        ("scale_logits", True),
        ("input_emb_norm", True),
        ("rope", False),
        ("n_kv_heads", 3),
        ("rope_scaling", {"type": "linear", "factor": 2}),
        ("rope_scaling", {"rope_type": "dynamic", "factor": 4.0}),
        ("rope_parameters", {"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0}),
        ("rope_full_precision", False),
        ("multi_query_attention", True),
        ("clip_qkv", 8.0),
        ("bias_for_layer_norm", True),
        ("layer_norm_with_affine", False),
    ],
)
def test_llada_unsupported_config_refused(key: str, value: object, ckpt) -> None:
    with pytest.raises(UnsupportedConfigError, match=key):
        LLaDAConfig.from_hub(_config(ckpt["llada"]) | {key: value})


def test_llada_rope_parameters_theta_must_agree(ckpt) -> None:
    cfg = _config(ckpt["llada"])
    same = cfg | {"rope_parameters": {"rope_type": "default", "rope_theta": cfg["rope_theta"]}}
    assert LLaDAConfig.from_hub(same).rope_theta == cfg["rope_theta"]
    other = cfg | {"rope_parameters": {"rope_theta": 2 * cfg["rope_theta"]}}
    with pytest.raises(UnsupportedConfigError, match="rope_parameters"):
        LLaDAConfig.from_hub(other)


@pytest.mark.parametrize(
    "changes",
    [
        {},  # the demo config: LLaDA-8B's key set and values
        {"rope_scaling": None},
        {"flash_attention": True},  # a kernel choice, same numerics
        {"multi_query_attention": False},
        {"clip_qkv": None},
    ],
)
def test_llada_accepts_the_hub_values(changes: dict, ckpt) -> None:
    LLaDAConfig.from_hub(_config(ckpt["llada"]) | changes)


@pytest.mark.parametrize(
    "changes",
    [
        {},  # the demo config: Dream-v0-7B's key set and values
        {"sliding_window": 4096, "use_sliding_window": False, "max_window_layers": 28},
        {"partial_rotary_factor": 1.0},
        {"rope_parameters": {"rope_type": "default", "rope_theta": 1e6}},
    ],
)
def test_dream_accepts_the_hub_values(changes: dict, ckpt) -> None:
    DreamConfig.from_hub(_config(ckpt["dream"]) | changes)


def test_llada_odd_split_refused(ckpt) -> None:
    with pytest.raises(UnsupportedConfigError, match="d_model"):
        LLaDAConfig.from_hub(_config(ckpt["llada"]) | {"n_heads": 5})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rope_scaling", {"type": "yarn", "factor": 4.0}),
        ("rope_scaling", {"type": "linear", "factor": 2}),
        ("rope_parameters", {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6}),
        ("partial_rotary_factor", 0.5),
        ("use_sliding_window", True),
        ("hidden_act", "gelu"),
        ("tie_word_embeddings", True),
        ("attention_bias", True),
        ("num_key_value_heads", 3),
    ],
)
def test_dream_unsupported_config_refused(key: str, value: object, ckpt) -> None:
    with pytest.raises(UnsupportedConfigError, match=key):
        DreamConfig.from_hub(_config(ckpt["dream"]) | {key: value})


@pytest.mark.parametrize(
    ("family", "key"),
    [("llada", "alibi"), ("dream", "rope_scaling"), ("llada", "rope_scaling")],
)
def test_load_model_refuses_unsupported(family: str, key: str, ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt[family], tmp_path / family)
    _patch_config(d, **{key: {"type": "linear", "factor": 2.0} if key == "rope_scaling" else True})
    with pytest.raises(UnsupportedConfigError, match=key):
        load_model(d, family)


def test_ar_accepts_llama3_rope_scaling(ckpt, models, tmp_path: Path) -> None:
    # Meta-Llama-3.1's rope_scaling: transformers implements it, so the loader must not refuse.
    d = _copy(ckpt["llama"], tmp_path / "llama3")
    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    cfg = _config(d)
    cfg["rope_parameters"] = scaling | {"rope_theta": cfg["rope_parameters"]["rope_theta"]}
    (d / "config.json").write_text(json.dumps(cfg))
    model = load_model(d, "ar")
    assert model.config.rope_parameters["rope_type"] == "llama3"
    ids = _ids(model, batch=1, length=8)
    assert torch.isfinite(_logits(model, ids)).all()


# ------------------------------------------------------------- read errors name the file


def _shard(d: Path, k: int = 1) -> Path:
    return d / sorted(set(json.loads((d / INDEX).read_text())["weight_map"].values()))[k]


@pytest.mark.parametrize("family", ["llada", "dream", "llama"])
@pytest.mark.parametrize("how", ["truncated", "garbage_header", "empty"])
def test_unreadable_shard_is_named(family: str, how: str, ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt[family], tmp_path / family)
    shard = _shard(d)
    data = shard.read_bytes()
    if how == "truncated":
        shard.write_bytes(data[: len(data) - 100])
    elif how == "garbage_header":
        shard.write_bytes(data[:8] + b"\xff" * 32 + data[40:])
    else:
        shard.write_bytes(b"")
    with pytest.raises(CheckpointError, match=re.escape(str(shard))):
        load_model(d, LOADER_FAMILY[family])


class _FailingReader:
    """A safe_open handle whose tensor reads fail, as a file changed under the loader would."""

    def __init__(self, inner, fail: str) -> None:
        self.inner, self.fail = inner, fail

    def __enter__(self):  # noqa: ANN204
        self.handle = self.inner.__enter__()
        return self

    def __exit__(self, *exc):  # noqa: ANN002, ANN204
        return self.inner.__exit__(*exc)

    def keys(self):  # noqa: ANN201
        return self.handle.keys()

    def get_slice(self, name: str):  # noqa: ANN201
        if self.fail == "get_slice":
            raise OSError("simulated read error")
        return self.handle.get_slice(name)

    def get_tensor(self, name: str):  # noqa: ANN201
        if self.fail == "get_tensor":
            from safetensors import SafetensorError

            raise SafetensorError("simulated read error")
        return self.handle.get_tensor(name)


@pytest.mark.parametrize("fail", ["get_slice", "get_tensor"])
def test_tensor_read_error_is_named(
    fail: str, ckpt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = loading.safe_open
    monkeypatch.setattr(
        loading, "safe_open", lambda path, **kw: _FailingReader(real(path, **kw), fail)
    )
    with pytest.raises(CheckpointError, match=r"model-0000\d-of-0000\d\.safetensors") as info:
        load_model(ckpt["llada"], "llada")
    assert str(ckpt["llada"]) in str(info.value) and "simulated read error" in str(info.value)


@pytest.mark.parametrize(
    "index", ["{not json", '{"weight_map": ["a", "b"]}', '{"weight_map": {"x": "../../etc/x"}}']
)
def test_unreadable_index_is_named(index: str, ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt["dream"], tmp_path / "index")
    (d / INDEX).write_text(index)
    with pytest.raises(CheckpointError, match=re.escape(str(d / INDEX))):
        load_model(d, "dream")


@pytest.mark.parametrize("family", ["llada", "llama"])
def test_unreadable_config_is_named(family: str, ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt[family], tmp_path / family)
    (d / "config.json").write_text('{"model_type": ')
    with pytest.raises(CheckpointError, match=re.escape(str(d / "config.json"))):
        load_model(d, LOADER_FAMILY[family])


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("tokenizer.json", '{"version": "1.0", "mod'),
        ("tokenizer.json", '{"model": {"type": "NoSuchModel"}}'),
        ("tokenizer_config.json", "{"),
        ("special_tokens_map.json", "[not json"),
    ],
)
def test_unreadable_tokenizer_is_named(name: str, content: str, ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt["llada"], tmp_path / "tok")
    (d / name).write_text(content)
    with pytest.raises(CheckpointError, match=re.escape(str(d / name))):
        load_tokenizer(d)


def test_missing_tokenizer_is_named(ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt["llada"], tmp_path / "tok")
    for p in d.glob("tokenizer*"):
        p.unlink()
    with pytest.raises(CheckpointError, match=re.escape(str(d))):
        load_tokenizer(d)


# ----------------------------------------------------- a checkpoint of another family


def _entry(source: str, family: str, theta: float) -> Model:
    """A config entry for a tiny checkpoint of layout `source`, declared as `family`."""
    sizes = PRESETS["tiny"][source]
    return Model(
        key="m",
        label="m",
        family=family,
        variant="base",
        t_train=sizes["max_position"],
        rope_theta=theta,
        head_dim=sizes["hidden"] // sizes["heads"],
        dtype="float32",
        demo={"preset": "tiny", "seed": 0},
    )


@pytest.mark.parametrize(
    ("family", "source", "model_type"),
    [
        ("llada", "llama", "llama"),  # a LLaMA checkpoint under a llada entry
        ("llada", "llada", "llama"),  # a LLaDA config claiming to be llama
        ("ar", "llada", "llada"),
        ("ar", "dream", "Dream"),
        ("ar", "llama", "llada"),  # a LLaMA config claiming to be llada
        ("dream", "llada", "llada"),
    ],
)
def test_other_family_model_type_refused(
    family: str, source: str, model_type: str, ckpt, tmp_path: Path
) -> None:
    d = _copy(ckpt[source], tmp_path / source)
    _patch_config(d, model_type=model_type)
    config = d / "config.json"
    with pytest.raises(CheckpointError, match=re.escape(str(config))) as info:
        load_model(d, family)
    assert repr(model_type) in str(info.value) and repr(family) in str(info.value)

    # The same at download time, before the rope check reads family-specific keys.
    model = _entry(source, family, _config(ckpt[source]).get("rope_theta", 500000.0))
    with pytest.raises(ConfigError, match=re.escape(str(config))) as info:
        checkpoints._check_declared_rope(model, d)
    assert repr(model_type) in str(info.value) and repr(family) in str(info.value)


def test_declared_rope_check_accepts_each_family(ckpt) -> None:
    for source, family in LOADER_FAMILY.items():
        cfg = _config(ckpt[source])
        theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
        model = _entry(source, family, theta)
        checkpoints._check_declared_rope(model, ckpt[source])


def test_declared_rope_check_names_a_broken_config(ckpt, tmp_path: Path) -> None:
    d = _copy(ckpt["llada"], tmp_path / "broken")
    cfg = _config(d)
    del cfg["d_model"]
    (d / "config.json").write_text(json.dumps(cfg))
    model = Model("m", "m", "llada", "base", 256, cfg["rope_theta"], 16, "float32")
    with pytest.raises(ConfigError, match=re.escape(str(d / "config.json"))):
        checkpoints._check_declared_rope(model, d)


@pytest.mark.parametrize("model_type", ["mistral", "qwen2", "LLaMA"])
def test_an_ar_checkpoint_of_another_architecture_is_refused(
    model_type: str, ckpt, tmp_path: Path
) -> None:
    """Family ar is the paper's LLaMA3 baseline: a config.json of another transformers
    architecture would load through AutoModelForCausalLM silently (Mistral takes LLaMA's tensor
    names as they are). Refused by name: the model key, the model_type found, 'llama'."""
    d = _copy(ckpt["llama"], tmp_path / "llama")
    _patch_config(d, model_type=model_type)
    with pytest.raises(CheckpointError) as info:
        load_model(d, "ar", key="llama3_8b_base")
    message = str(info.value)
    assert message.startswith(f"models.llama3_8b_base: {d / 'config.json'} has model_type")
    assert repr(model_type) in message and "expects model_type 'llama'" in message
    # The same at download time.
    model = _entry("llama", "ar", _config(ckpt["llama"])["rope_parameters"]["rope_theta"])
    with pytest.raises(ConfigError, match=rf"models\.m .*{model_type!r}.*'llama'"):
        checkpoints._check_declared_rope(model, d)
    _patch_config(d, model_type="llama")
    load_model(d, "ar", key="llama3_8b_base")


def test_a_copied_view_with_dangling_links_names_the_link(ckpt, tmp_path: Path) -> None:
    """A RoPE view copied without its original: the index is there, as a link whose file is
    gone; the message names that link, not "no weights ... expected the index"."""
    from longllada import hub, rope

    theta = _config(ckpt["llada"])["rope_theta"]
    scaling = rope.scaling_for_lambda(theta, 16, 256, 3)
    rope.patch_checkpoint(ckpt["llada"], tmp_path / "view", scaling)
    copy = tmp_path / "elsewhere/deeper/view"
    shutil.copytree(tmp_path / "view", copy, symlinks=True)
    index = copy / INDEX
    assert index.is_symlink() and not index.exists()
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(index))} is a link to .*"):
        load_model(copy, "llada")
    with pytest.raises(hub.DownloadError, match=rf"{re.escape(str(index))} is a link to "):
        hub.verify_checkpoint(copy)
    # The index found, a shard's link dangling: named too.
    shutil.copy2(ckpt["llada"] / INDEX, copy / INDEX.replace(".json", ".tmp"))
    index.unlink()
    (copy / INDEX.replace(".json", ".tmp")).rename(index)
    shard = copy / json.loads(index.read_text())["weight_map"]["model.transformer.ln_f.weight"]
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(shard))} is a link to "):
        load_model(copy, "llada")
