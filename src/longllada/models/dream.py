"""Dream-v0-7B (Base / Instruct): a Qwen2 transformer run bidirectionally, top to bottom.

Module and parameter names match the hub checkpoint (`model.layers.{i}.self_attn.q_proj...`).
Numerics follow the hub code (MODELS.md): RMSNorm in fp32, RoPE cos/sin computed in fp32 but the
rotation done in the model dtype (unlike LLaDA), attention without any mask, logits in the model
dtype. Attention kernel choice and logits row selection are shared with LLaDA; the paper's Dream
ran SDPA (its hub code ignores `flash_attention`), so load_model's "auto" picks SDPA for Dream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from longllada.models.llada import (
    RMSNorm,
    attention,
    check_attn_impl,
    rotate_half,
    select_rows,
)
from longllada.models.loading import CheckpointError, UnsupportedConfigError

# config.json settings this class does not implement, with the only value it accepts; an absent
# key takes that value (the Qwen2/Dream default). Qwen2 hard-codes q/k/v biases and no o_proj
# bias; a config carrying `attention_bias` may mean something else (LLaMA: o_proj bias too).
_REQUIRED_VALUES: dict[str, Any] = {
    "hidden_act": "silu",
    "rope_scaling": None,
    "use_sliding_window": False,
    "tie_word_embeddings": False,
    "attention_bias": None,
    "mlp_bias": False,
    # Read by transformers' RoPE init, which the hub code calls: < 1 rotates only some dims.
    "partial_rotary_factor": 1.0,
}
# Left alone on purpose: sliding_window and max_window_layers (only used when
# use_sliding_window, refused above), attention_dropout (inactive in eval mode),
# max_position_embeddings, initializer_range, use_cache.


@dataclass
class DreamConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    rope_theta: float
    rms_norm_eps: float
    mask_token_id: int

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_hub(cls, cfg: dict[str, Any]) -> DreamConfig:
        """Read a hub config.json; refuse (naming the key) any setting not implemented here."""
        for key, accepted in _REQUIRED_VALUES.items():
            value = cfg.get(key, accepted)
            if value != accepted:
                raise UnsupportedConfigError(
                    f"Dream config.json: {key}={value!r} is not supported (only {accepted!r})"
                )
        # transformers-5-style rope_parameters, if a config ever carries them, win over the
        # top-level key (as in longllada.rope.read_rope); only unscaled RoPE is implemented.
        rope_params = cfg.get("rope_parameters") or {}
        if not isinstance(rope_params, dict):
            raise UnsupportedConfigError(
                f"Dream config.json: rope_parameters={rope_params!r} is not an object"
            )
        if rope_params.get("partial_rotary_factor", 1.0) != 1.0:
            raise UnsupportedConfigError(
                "Dream config.json: rope_parameters.partial_rotary_factor="
                f"{rope_params['partial_rotary_factor']!r} is not supported (only 1.0)"
            )
        if rope_params.get("rope_type", "default") != "default":
            raise UnsupportedConfigError(
                f"Dream config.json: rope_parameters.rope_type={rope_params['rope_type']!r} "
                "is not supported (only 'default')"
            )
        layer_types = set(cfg.get("layer_types") or ["full_attention"])
        if layer_types != {"full_attention"}:
            raise UnsupportedConfigError(
                f"Dream config.json: layer_types={sorted(layer_types)} is not supported "
                "(only full_attention)"
            )
        try:
            hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
            kv_heads = int(cfg.get("num_key_value_heads") or heads)
            config = cls(
                hidden_size=hidden,
                num_hidden_layers=int(cfg["num_hidden_layers"]),
                num_attention_heads=heads,
                num_key_value_heads=kv_heads,
                intermediate_size=int(cfg["intermediate_size"]),
                vocab_size=int(cfg["vocab_size"]),
                rope_theta=float(rope_params.get("rope_theta", cfg.get("rope_theta"))),
                rms_norm_eps=float(cfg["rms_norm_eps"]),
                # No default: unlike LLaDA's, Dream's mask id has always been in config.json.
                mask_token_id=int(cfg["mask_token_id"]),
            )
        except KeyError as err:
            raise CheckpointError(f"Dream config.json lacks the key {err.args[0]!r}") from err
        except (TypeError, ValueError) as err:  # e.g. rope_theta absent: float(None)
            raise CheckpointError(f"Dream config.json has an invalid value: {err}") from err
        if hidden % heads:
            raise UnsupportedConfigError(
                f"Dream config.json: hidden_size={hidden} is not divisible by "
                f"num_attention_heads={heads}"
            )
        if cfg.get("head_dim") not in (None, config.head_dim):
            raise UnsupportedConfigError(
                f"Dream config.json: head_dim={cfg['head_dim']} differs from hidden_size / "
                f"num_attention_heads = {config.head_dim}"
            )
        if config.head_dim % 2:
            raise UnsupportedConfigError(
                f"Dream config.json: head dim {config.head_dim} is odd (RoPE needs pairs)"
            )
        if heads % kv_heads:
            raise UnsupportedConfigError(
                f"Dream config.json: num_key_value_heads={kv_heads} does not divide "
                f"num_attention_heads={heads}"
            )
        return config


# ------------------------------------------------------------------------------------ layers


# RMSNorm (fp32, cast back, then scale: Qwen2's order too) and rotate_half are LLaDA's.


class RotaryEmbedding(nn.Module):
    """RoPE on q and k, [B, H, L, head_dim], positions 0..L-1.

    cos/sin are computed in fp32 and cast to the input dtype; the rotation itself runs in the
    input dtype (bf16 in the paper's Dream runs), as in the hub code. A module of its own so a
    forward hook sees the post-RoPE q and k.
    """

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        self.register_buffer("inv_freq", self._inv_freq(), persistent=False)

    def _inv_freq(self) -> torch.Tensor:
        # On the CPU, as transformers' Qwen2 does at construction; moved to the device after.
        exponent = torch.arange(0, self.head_dim, 2, dtype=torch.int64, device="cpu").float()
        return 1.0 / (self.theta ** (exponent / self.head_dim))

    def reset_buffers(self, device: torch.device) -> None:
        """(Re)compute inv_freq, e.g. after building the model on the meta device."""
        self.inv_freq = self._inv_freq().to(device)

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.arange(q.shape[-2], device=q.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        angles = torch.cat((freqs, freqs), dim=-1)
        cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


# ------------------------------------------------------------------------------------- model


class DreamAttention(nn.Module):
    def __init__(self, config: DreamConfig, attn_impl: str) -> None:
        super().__init__()
        d, hd = config.hidden_size, config.head_dim
        self.n_heads, self.n_kv_heads, self.head_dim = (
            config.num_attention_heads,
            config.num_key_value_heads,
            hd,
        )
        self.attn_impl = attn_impl
        self.q_proj = nn.Linear(d, self.n_heads * hd, bias=True)
        self.k_proj = nn.Linear(d, self.n_kv_heads * hd, bias=True)
        self.v_proj = nn.Linear(d, self.n_kv_heads * hd, bias=True)
        self.o_proj = nn.Linear(self.n_heads * hd, d, bias=False)
        self.rotary = RotaryEmbedding(hd, config.rope_theta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, seq_len, _ = x.shape
        q = self.q_proj(x).view(b, seq_len, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, seq_len, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, seq_len, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rotary(q, k)
        y = attention(q, k, v, self.attn_impl)
        return self.o_proj(y.transpose(1, 2).reshape(b, seq_len, -1))


class DreamMLP(nn.Module):
    def __init__(self, config: DreamConfig) -> None:
        super().__init__()
        d, inter = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(d, inter, bias=False)
        self.up_proj = nn.Linear(d, inter, bias=False)
        self.down_proj = nn.Linear(inter, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DreamLayer(nn.Module):
    def __init__(self, config: DreamConfig, attn_impl: str) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = DreamAttention(config, attn_impl)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = DreamMLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class DreamBackbone(nn.Module):
    # Only here so parameter names get the hub's `model.` prefix.
    def __init__(self, config: DreamConfig, attn_impl: str) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            DreamLayer(config, attn_impl) for _ in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class DreamModel(nn.Module):
    """Dream mask predictor. `forward(input_ids, logits_index)` -> logits in the model dtype.

    The logits are *not* shifted: row i is the model's output at position i. Dream's sampler
    reads position i's prediction from row i - 1 (MODELS.md); that shift belongs to the caller.
    """

    family = "dream"

    def __init__(self, config: DreamConfig, attn_impl: str = "sdpa") -> None:
        super().__init__()
        check_attn_impl(attn_impl)
        self.config = config
        self.mask_token_id = config.mask_token_id
        self.attn_impl = attn_impl
        self.model = DreamBackbone(config, attn_impl)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(
        self, input_ids: torch.Tensor, logits_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for [B, L] token ids.

        logits_index None: all rows, [B, L, V]. A 1-D integer tensor of positions: those rows,
        [B, n, V]. A bool [B, L] tensor: the True rows in row-major order, [N_true, V].
        The final norm and LM head run only on the selected rows (norm and head are row-wise).
        """
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x)
        x = select_rows(x, logits_index)
        return self.lm_head(self.model.norm(x))
