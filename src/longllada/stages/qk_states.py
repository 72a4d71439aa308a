"""Figure 5 jobs: final-layer query and key states, before and after RoPE, for one document.

The states are read through forward hooks (the model code is not copied): on LLaDA and Dream,
`q_proj`/`k_proj` give the states without RoPE and the block's `rotary` module gives them with
it; on LLaMA (transformers) the rotation is applied to the hooked projections with the model's
own `rotary_emb` output and transformers' `apply_rotary_pos_emb`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longllada import fingerprints, provenance
from longllada.config import Model, Run
from longllada.documents import document_ids, read_document
from longllada.stages.common import NonFiniteError, load_run_model, run_settings

log = logging.getLogger(__name__)


def capture_final_layer(net: torch.nn.Module, family: str, ids: torch.Tensor) -> dict[str, Any]:
    """q/k of the last layer, [L, heads*head_dim] each, without and with RoPE."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_module, _inputs, output):
            seen[name] = output

        return hook

    if family == "ar":
        attn = net.model.layers[-1].self_attn
        modules = {"q_pre": attn.q_proj, "k_pre": attn.k_proj, "cos_sin": net.model.rotary_emb}
    else:
        last = net.model.transformer.blocks[-1] if family == "llada" else None
        last = last if last is not None else net.model.layers[-1].self_attn
        modules = {"q_pre": last.q_proj, "k_pre": last.k_proj, "post": last.rotary}
    handles = [m.register_forward_hook(keep(name)) for name, m in modules.items()]
    try:
        with torch.no_grad():  # the states are all we need: skip the vocabulary-wide LM head
            if family == "ar":
                net(ids[None], logits_to_keep=1)
            else:
                net(ids[None], logits_index=torch.zeros(0, dtype=torch.long, device=ids.device))
    finally:
        for h in handles:
            h.remove()

    head_dim = _head_dim(net, family)
    q_pre, k_pre = seen["q_pre"][0], seen["k_pre"][0]  # [L, heads * head_dim]
    if family == "ar":
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        cos, sin = seen["cos_sin"]
        q, k = _heads(q_pre, head_dim), _heads(k_pre, head_dim)
        q_post, k_post = apply_rotary_pos_emb(q[None], k[None], cos, sin)
        q_post, k_post = _flat(q_post[0]), _flat(k_post[0])
    else:
        q_rot, k_rot = seen["post"]  # [B, heads, L, head_dim]
        q_post, k_post = _flat(q_rot[0]), _flat(k_rot[0])
    out = {"q_pre": q_pre, "k_pre": k_pre, "q_post": q_post, "k_post": k_post}
    return {k: v.float().cpu().numpy() for k, v in out.items()}


def _head_dim(net: torch.nn.Module, family: str) -> int:
    cfg = net.config
    if family == "llada":
        return cfg.d_model // cfg.n_heads
    return getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads


def _heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """[L, H*D] -> [H, L, D]"""
    return x.view(x.shape[0], -1, head_dim).transpose(0, 1)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[H, L, D] -> [L, H*D]"""
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def run(
    model: Model,
    run: Run,
    settings: dict[str, Any],
    checkpoint_file: str | Path,
    document: str | Path,
    document_index: int,
    output: str | Path,
    seed: int,
    depends_on: str | None = None,
) -> None:
    watch = provenance.Stopwatch()
    settings = dict(settings)  # a rule hands a read-only mapping
    if depends_on is None:
        depends_on = fingerprints.canonical(
            fingerprints.compute(model, run, settings, seed, document_index=document_index)
        )
    net, tokenizer, prov = load_run_model(model, checkpoint_file)
    text = read_document(document, document_index)
    length, stride = settings["length"], settings.get("stride", 1)
    device = next(net.parameters()).device
    ids = torch.tensor(document_ids(tokenizer, text, length, "the Q/K state dump"), device=device)
    states = capture_final_layer(net, model.family, ids)
    for name, values in states.items():
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).any(axis=1).argmax())
            raise NonFiniteError(
                f"{model.key}: final-layer {name} is NaN/inf (first at position {bad}); "
                "a broken checkpoint or an overflowing dtype; nothing was written"
            )
    keep = np.arange(0, length, stride)
    record = provenance.record(
        "qk_states",
        watch=watch,
        model=prov["model"],
        rope=prov["rope"],
        settings={**run_settings(run, settings), "dtype": prov["dtype"]},
        seed=seed,
        depends_on=fingerprints.partial_header(
            depends_on, {"checkpoint": checkpoint_file, "document": document}
        ),
    )
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(output).with_name(f".{Path(output).name}.tmp.npz")
    np.savez_compressed(
        tmp,
        positions=keep,
        provenance=np.array(json.dumps(record, allow_nan=False)),
        **{k: v[keep].astype(np.float16) for k, v in states.items()},
    )
    tmp.replace(output)
    log.info("%s: %d positions of final-layer q/k saved", model.key, len(keep))
