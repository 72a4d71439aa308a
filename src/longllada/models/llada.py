"""LLaDA-8B (Base / Instruct / 1.5): a bidirectional LLaMA-style transformer, top to bottom.

Module and parameter names match the hub checkpoint exactly (`model.transformer.blocks.{i}...`),
so the state dict loads without any renaming. Numerics follow the hub code (MODELS.md): RMSNorm in
fp32, RoPE applied in fp32, attention without any mask, logits in the model dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from longllada.models.loading import CheckpointError, UnsupportedConfigError

# The hub's generate.py hard-codes this id; older LLaDA configs do not carry mask_token_id.
DEFAULT_MASK_TOKEN_ID = 126336
# The attention kernels the model classes run; load_model turns the config's "auto" into one.
ATTN_IMPLS = ("sdpa", "flash")

# config.json flags this class does not implement, with the only value it accepts. A key absent
# from config.json takes the hub code's default, which is the accepted value for all of them.
_REQUIRED_VALUES: dict[str, Any] = {
    "alibi": False,
    "block_group_size": 1,
    "attention_layer_norm": False,  # QK norm
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "bias_for_layer_norm": False,
    "block_type": "llama",
    "activation_type": "silu",
    "include_bias": False,
    "include_qkv_bias": False,
    "weight_tying": False,
    "scale_logits": False,
    "input_emb_norm": False,
    "rope": True,
    "rope_full_precision": True,
    "multi_query_attention": False,
    "clip_qkv": None,
    # Not a key of the hub code (which would ignore it), but a config carrying one asks for
    # scaled RoPE, which is not implemented: refused rather than silently run unscaled.
    "rope_scaling": None,
}
# Left alone on purpose: the dropouts (attention_dropout, residual_dropout, embedding_dropout:
# inactive in eval mode), flash_attention (a kernel choice: the config's attn_impl makes it; the
# numbers differ by rounding only), alibi_bias_max and
# attention_layer_norm_with_affine (only used with alibi / attention_layer_norm, refused above),
# init_*, precision, use_cache, max_sequence_length (training or cache settings).


@dataclass
class LLaDAConfig:
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    mlp_hidden_size: int
    vocab_size: int  # rows of wte / ff_out: config's embedding_size (padded) when given
    rope_theta: float
    rms_norm_eps: float
    mask_token_id: int = DEFAULT_MASK_TOKEN_ID

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def from_hub(cls, cfg: dict[str, Any]) -> LLaDAConfig:
        """Read a hub config.json; refuse (naming the key) any setting not implemented here."""
        for key, accepted in _REQUIRED_VALUES.items():
            value = cfg.get(key, accepted)
            # multi_query_attention is null in the hub config; treat null like false.
            if key == "multi_query_attention" and value is None:
                value = False
            if value != accepted:
                raise UnsupportedConfigError(
                    f"LLaDA config.json: {key}={value!r} is not supported (only {accepted!r})"
                )
        # transformers-5-style rope_parameters: only unscaled RoPE, and a theta that agrees
        # with the top-level rope_theta the hub code reads (longllada.rope reads this one).
        rope_params = cfg.get("rope_parameters") or {}
        if not isinstance(rope_params, dict):
            raise UnsupportedConfigError(
                f"LLaDA config.json: rope_parameters={rope_params!r} is not an object"
            )
        if rope_params.get("rope_type", "default") != "default":
            raise UnsupportedConfigError(
                f"LLaDA config.json: rope_parameters.rope_type={rope_params['rope_type']!r} "
                "is not supported (only 'default')"
            )
        if "rope_theta" in rope_params and rope_params["rope_theta"] != cfg.get("rope_theta"):
            raise UnsupportedConfigError(
                f"LLaDA config.json: rope_parameters.rope_theta={rope_params['rope_theta']!r} "
                f"differs from rope_theta={cfg.get('rope_theta')!r}, which the hub code reads"
            )
        try:
            d_model, n_heads = int(cfg["d_model"]), int(cfg["n_heads"])
            n_kv_heads = int(cfg.get("n_kv_heads") or n_heads)
            mlp = cfg.get("mlp_hidden_size") or int(cfg["mlp_ratio"]) * d_model
            config = cls(
                d_model=d_model,
                n_layers=int(cfg["n_layers"]),
                n_heads=n_heads,
                n_kv_heads=n_kv_heads,
                mlp_hidden_size=int(mlp),
                vocab_size=int(cfg.get("embedding_size") or cfg["vocab_size"]),
                rope_theta=float(cfg["rope_theta"]),
                rms_norm_eps=float(cfg["rms_norm_eps"]),
                mask_token_id=int(cfg.get("mask_token_id", DEFAULT_MASK_TOKEN_ID)),
            )
        except KeyError as err:
            raise CheckpointError(f"LLaDA config.json lacks the key {err.args[0]!r}") from err
        except (TypeError, ValueError) as err:  # e.g. a null or non-numeric size
            raise CheckpointError(f"LLaDA config.json has an invalid value: {err}") from err
        if d_model % n_heads:
            raise UnsupportedConfigError(
                f"LLaDA config.json: d_model={d_model} is not divisible by n_heads={n_heads}"
            )
        if config.head_dim % 2:
            raise UnsupportedConfigError(
                f"LLaDA config.json: head dim {config.head_dim} is odd (RoPE needs pairs)"
            )
        if n_heads % n_kv_heads:
            raise UnsupportedConfigError(
                f"LLaDA config.json: n_kv_heads={n_kv_heads} does not divide n_heads={n_heads}"
            )
        return config


# ------------------------------------------------------------------------------------ layers


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32, cast back, *then* scale: the hub's order (matters in fp16/bf16).
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """RoPE on q and k, [B, H, L, head_dim], positions 0..L-1, computed and applied in fp32.

    A parameter-free module of its own so that a forward hook on it sees the post-RoPE q and k
    (its output), while hooks on q_proj / k_proj see them before RoPE.
    """

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        # Not persistent: derived from config.json's rope_theta, never read from the checkpoint.
        self.register_buffer("inv_freq", self._inv_freq(None), persistent=False)

    def _inv_freq(self, device: torch.device | None) -> torch.Tensor:
        exponent = torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32)
        return 1.0 / (self.theta ** (exponent / self.head_dim))

    def reset_buffers(self, device: torch.device) -> None:
        """(Re)compute inv_freq on `device`, e.g. after building the model on the meta device."""
        # The hub code computes it on the compute device too, which keeps us bit-compatible.
        self.inv_freq = self._inv_freq(device)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seq_len = q.shape[-2]
        pos = torch.arange(seq_len, device=q.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        angles = torch.cat((freqs, freqs), dim=-1)  # rotate_half layout: pairs (j, j + d/2)
        cos, sin = angles.cos(), angles.sin()

        def rotate(t: torch.Tensor) -> torch.Tensor:
            tf = t.float()
            return (tf * cos + rotate_half(tf) * sin).to(t.dtype)

        return rotate(q), rotate(k)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: str) -> torch.Tensor:
    """Bidirectional attention, [B, H, L, D] in and out, scale 1/sqrt(D), never a mask.

    impl "sdpa": torch's scaled_dot_product_attention. impl "flash": flash-attn's
    flash_attn_func(causal=False), what LLaDA's hub code ran in the paper (fp16/bf16 on CUDA;
    load_model checks that before it reads any weight).
    k and v may have fewer heads than q (GQA): query head h reads kv head h // (H / H_kv).
    """
    if impl == "flash":
        from flash_attn import flash_attn_func  # optional package, imported only when used

        # flash-attn wants [B, L, H, D] and handles GQA itself.
        out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=False)
        return out.transpose(1, 2)
    n_rep = q.shape[1] // k.shape[1]
    if n_rep > 1:
        # Repeat kv heads rather than enable_gqa, which not every fused SDPA kernel accepts; a
        # fallback to the math kernel would materialise an L x L score matrix per head.
        k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, is_causal=False)


def check_attn_impl(attn_impl: str) -> None:
    """Refuse a kernel the model classes do not have ("auto" is resolved by load_model)."""
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}")


# ------------------------------------------------------------------------------------- model


class LLaDABlock(nn.Module):
    def __init__(self, config: LLaDAConfig, attn_impl: str) -> None:
        super().__init__()
        d, hd = config.d_model, config.head_dim
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, hd
        self.attn_impl = attn_impl
        self.attn_norm = RMSNorm(d, config.rms_norm_eps)
        self.q_proj = nn.Linear(d, config.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, config.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, config.n_kv_heads * hd, bias=False)
        self.rotary = RotaryEmbedding(hd, config.rope_theta)
        self.attn_out = nn.Linear(config.n_heads * hd, d, bias=False)
        self.ff_norm = RMSNorm(d, config.rms_norm_eps)
        self.ff_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)  # gate
        self.up_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(config.mlp_hidden_size, d, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, seq_len, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(b, seq_len, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, seq_len, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, seq_len, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rotary(q, k)
        y = attention(q, k, v, self.attn_impl)
        x = x + self.attn_out(y.transpose(1, 2).reshape(b, seq_len, -1))
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


class LLaDATransformer(nn.Module):
    def __init__(self, config: LLaDAConfig, attn_impl: str) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(LLaDABlock(config, attn_impl) for _ in range(config.n_layers))
        self.ln_f = RMSNorm(config.d_model, config.rms_norm_eps)
        self.ff_out = nn.Linear(config.d_model, config.vocab_size, bias=False)  # untied LM head


class LLaDAModel(nn.Module):
    # Only here so parameter names get the hub's `model.transformer.` prefix.
    def __init__(self, config: LLaDAConfig, attn_impl: str) -> None:
        super().__init__()
        self.transformer = LLaDATransformer(config, attn_impl)


class LLaDAModelLM(nn.Module):
    """LLaDA mask predictor. `forward(input_ids, logits_index)` -> logits in the model dtype."""

    family = "llada"

    def __init__(self, config: LLaDAConfig, attn_impl: str = "sdpa") -> None:
        super().__init__()
        check_attn_impl(attn_impl)
        self.config = config
        self.mask_token_id = config.mask_token_id
        self.attn_impl = attn_impl
        self.model = LLaDAModel(config, attn_impl)

    def forward(
        self, input_ids: torch.Tensor, logits_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for [B, L] token ids.

        logits_index None: all rows, [B, L, V]. A 1-D integer tensor of positions: those rows,
        [B, n, V]. A bool [B, L] tensor: the True rows in row-major order, [N_true, V].
        The final norm and LM head run only on the selected rows (norm and head are row-wise).
        """
        t = self.model.transformer
        x = t.wte(input_ids)
        for block in t.blocks:
            x = block(x)
        x = select_rows(x, logits_index)
        return t.ff_out(t.ln_f(x))


def select_rows(x: torch.Tensor, logits_index: torch.Tensor | None) -> torch.Tensor:
    """Rows of hidden states [B, L, D] picked by a forward's `logits_index` (see forward)."""
    if logits_index is None:
        return x
    if logits_index.dtype == torch.bool:
        if logits_index.shape != x.shape[:2]:
            raise ValueError(
                f"bool logits_index has shape {tuple(logits_index.shape)}, "
                f"expected {tuple(x.shape[:2])}"
            )
        return x[logits_index]
    if logits_index.dim() != 1 or logits_index.is_floating_point():
        raise ValueError("logits_index must be None, a 1-D integer tensor or a bool [B, L] mask")
    return x[:, logits_index]
