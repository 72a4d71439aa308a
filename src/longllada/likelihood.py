"""Perplexity estimators behind Figure 1a: causal (LLaMA3) and masked-diffusion (LLaDA, Dream).

Causal: one forward over the document, next-token cross-entropy, running mean, exp.

Diffusion: a masked model has no left-to-right factorisation, so the paper (its official
``ppl/get_ppl_llada.py``, adapted from LLaDA's ``get_log_likelihood.py``) scores the document
64 tokens at a time: for chunk ``i`` the prompt is the first ``64 (i + 1)`` tokens and the answer
the next 64; each of 8 Monte-Carlo draws masks exactly ``k ~ U{1..64}`` answer tokens and takes
the mean cross-entropy over the masked positions; ``ppl_i = exp(mean over draws)`` and the curve
is the running geometric mean of ``ppl_i`` over chunks. :func:`mc_chunk_loss` computes one chunk
(the job checkpoints one JSONL line per chunk with :mod:`longllada.jobs`), :func:`mc_ppl_curve`
turns the per-chunk losses into the curve.

All losses are computed in fp32 from the model's logits. The official scripts computed them in
bf16 (which is why the published LLaMA values are multiples of 1/64 etc.); fp32 is the exact
version of the same quantity.

Model API expected from diffusion models: ``model(input_ids, logits_index=None) -> logits`` with
``logits_index`` None (all rows, ``[B, L, V]``), a 1-D LongTensor of positions (``[B, n, V]``) or
a bool ``[B, L]`` mask (``[N_true, V]``, rows in row-major order); ``model.mask_token_id``.
Causal models are Hugging Face ``*ForCausalLM`` (``model(input_ids).logits``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

#: Seed of the official script (``seed = 2025``).
DEFAULT_SEED = 2025
#: The official settings: 64-token chunks, 8 draws, chunks 0..254 (prompts 64..16320 tokens).
DEFAULT_CHUNK = 64
DEFAULT_DRAWS = 8
DEFAULT_N_CHUNKS = 255
#: LLaDA paper (Appendix B.5): 128 Monte-Carlo samples for its likelihood evaluations.
DEFAULT_ELBO_DRAWS = 128
#: Official causal script: at most 16,385 tokens (16,384 next-token predictions).
DEFAULT_CAUSAL_TOKENS = 16385
# Rows per block when upcasting logits to fp32 for the cross-entropy: 16K x 128K vocabulary in
# fp32 would be an 8 GB temporary, blocks keep it at ~1 GB without changing any number.
_CE_BLOCK_ROWS = 2048
# Answer positions of the Monte-Carlo draws that go through the model in one forward.
_MC_BATCH_ROWS = 1024


# --------------------------------------------------------------------------------------------
# helpers


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _logits(out: Any) -> torch.Tensor:
    """Hugging Face models return an output object, our diffusion models a tensor."""
    return out.logits if hasattr(out, "logits") else out


def _check_ids(ids: torch.Tensor) -> None:
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D token tensor, got shape {tuple(ids.shape)}")


def _require_tokens(ids: torch.Tensor, needed: int, what: str) -> None:
    if len(ids) < needed:
        raise ValueError(
            f"document has {len(ids)} tokens but {what} asks for {needed}; "
            "use a longer document or a shorter context"
        )


def _ce_fp32(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy in fp32 of ``logits [N, V]`` against ``targets [N]``."""
    out = torch.empty(len(targets), dtype=torch.float32, device=logits.device)
    for a in range(0, len(targets), _CE_BLOCK_ROWS):
        b = a + _CE_BLOCK_ROWS
        out[a:b] = F.cross_entropy(logits[a:b].float(), targets[a:b], reduction="none")
    return out


# --------------------------------------------------------------------------------------------
# causal models


def official_causal_length(
    n_tokens: int, max_tokens: int = DEFAULT_CAUSAL_TOKENS, every: int = 64
) -> int:
    """How many tokens of a document the official causal script feeds the model.

    ``max_tokens`` if the document is longer than ``max_tokens - 1``, else the largest
    ``every * m + 1`` that fits. The published LLaMA curves stop at x = 16000: the GovReport
    document has between 16064 and 16127 LLaMA-3 tokens, so 16065 tokens were used.
    """
    if n_tokens > max_tokens - 1:
        return max_tokens
    return (n_tokens // every) * every + 1


@torch.inference_mode()
def causal_ppl_curve(
    model: torch.nn.Module,
    ids: torch.Tensor,
    every: int = 64,
    n_tokens: int | None = None,
) -> list[dict[str, float]]:
    """Running next-token perplexity of a causal LM over ``ids`` (one forward).

    ``n_tokens``: use the first ``n_tokens`` tokens (error if the document is shorter); None uses
    all of ``ids`` (see :func:`official_causal_length` for the official truncation).

    x convention, mirroring the official script and the published csv: with ``losses[j]`` the
    cross-entropy of predicting token ``j + 1``, the script reported ``exp(cumsum / count)`` at
    indices ``[64::64]``, i.e. the row at ``context_tokens = n`` averages the first ``n + 1``
    losses (the last of them conditioned on ``n + 1`` tokens). Rows are emitted for
    ``n = every, 2 every, ...`` while ``n + 1 <= len(ids) - 1``: 16385 tokens give 64..16320
    (255 rows, the LLaDA x grid); the paper's 16065 LLaMA tokens give 64..16000 (250 rows).
    """
    _check_ids(ids)
    if n_tokens is not None:
        _require_tokens(ids, n_tokens, "the causal context")
        ids = ids[:n_tokens]
    if every < 1:
        raise ValueError(f"every must be positive, got {every}")
    # The first row needs every + 1 losses, i.e. every + 2 tokens.
    _require_tokens(ids, every + 2, f"one perplexity point every {every} tokens")
    ids = ids.to(_device(model))
    losses = _causal_losses(model, ids)
    # Running mean in fp64 so that 16K summands lose nothing.
    running = losses.double().cumsum(0) / torch.arange(1, len(losses) + 1, device=losses.device)
    ppl = running.exp().cpu()
    return [{"context_tokens": n, "ppl": float(ppl[n])} for n in range(every, len(losses), every)]


def _causal_losses(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropies (fp32) of ``ids``. A Hugging Face ``*ForCausalLM`` (a body
    ``model.model`` and an ``lm_head``) gets its LM head in blocks of rows: at 16K tokens and a
    128K vocabulary the full logits would be a 4 GB (bf16) to 8 GB (fp32) tensor."""
    body, head = getattr(model, "model", None), getattr(model, "lm_head", None)
    if body is None or head is None:
        logits = _logits(model(ids[None]))[0]
        return _ce_fp32(logits[:-1], ids[1:])
    hidden = body(input_ids=ids[None]).last_hidden_state[0, :-1]
    out = torch.empty(len(hidden), dtype=torch.float32, device=hidden.device)
    for a in range(0, len(hidden), _CE_BLOCK_ROWS):
        b = a + _CE_BLOCK_ROWS
        out[a:b] = _ce_fp32(head(hidden[a:b]), ids[1:][a:b])
    return out


# --------------------------------------------------------------------------------------------
# masked diffusion models: Monte-Carlo masks


def chunk_seed(seed: int, chunk_index: int, stream: str = "mc") -> int:
    """A 63-bit seed derived from (stream, global seed, chunk index) by SHA-256.

    Hash-derived rather than e.g. ``seed + i`` so nearby (seed, chunk) pairs give unrelated
    streams; SHA-256 is fixed forever, so the seeds do not depend on library versions.
    """
    digest = hashlib.sha256(f"{stream}:{seed}:{chunk_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def draw_masks(
    chunk: int,
    draws: int,
    generator: torch.Generator,
    k_generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of one chunk in the official order: for each draw, ``k`` then a permutation.

    Returns ``ks`` (LongTensor ``[draws]``, values in 1..chunk) and ``masks`` (bool CPU tensor
    ``[draws, chunk]`` with exactly ``ks[d]`` True in row ``d``). As in the official script, the
    masked positions are those ``j`` with ``perm[j] < k`` (``(arange < k)[perm]``), a uniform
    ``k``-subset. ``k_generator``: draw ``k`` from a separate generator (the official script
    drew ``k`` on the GPU and the permutation on the CPU); None draws both from ``generator``.
    """
    k_gen = generator if k_generator is None else k_generator
    ks, masks = [], []
    for _ in range(draws):
        k = torch.randint(1, chunk + 1, (), generator=k_gen, device=k_gen.device)
        perm = torch.randperm(chunk, generator=generator, device=generator.device)
        ks.append(int(k))
        masks.append(perm.cpu() < int(k))
    return torch.tensor(ks, dtype=torch.long), torch.stack(masks)


class MaskSampler:
    """Where the Monte-Carlo masks of each chunk come from.

    Default (``official_rng=False``): chunk ``i`` gets a fresh CPU generator seeded by
    :func:`chunk_seed` ``(seed, i)``. Every chunk's masks are then a pure function of
    ``(seed, i)``: a job killed after chunk 100 and resumed at chunk 101 draws exactly the masks
    an uninterrupted run draws, chunks can run in any order or on different nodes, and CPU
    generators give the same masks on every machine. This differs from the official script,
    which seeds once (``torch.manual_seed(2025)``) and draws all chunks from one stream, so
    the two modes give different (equally distributed) masks.

    ``official_rng=True`` (fidelity studies): one stream seeded with ``seed`` and consumed chunk
    after chunk, as in the official script. ``k_device`` is where ``k`` is drawn: the official
    script drew ``k`` with ``torch.randint(..., device=<model device>)`` (the CUDA generator on a
    GPU) and the permutation with ``torch.randperm`` on the CPU generator; pass the model's
    device to reproduce that split (on a CPU both came from the one CPU generator). Asking for a
    chunk beyond the next one replays the skipped chunks' draws and discards them, so a resumed
    job still gets the masks of an uninterrupted one; asking for an earlier chunk restarts the
    stream from the seed.
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        official_rng: bool = False,
        k_device: str | torch.device = "cpu",
        stream: str = "mc",
    ) -> None:
        self.seed = seed
        self.official_rng = official_rng
        self.k_device = torch.device(k_device)
        self.stream = stream
        self._reset()

    def _reset(self) -> None:
        self._gen = torch.Generator().manual_seed(self.seed)
        self._k_gen: torch.Generator | None = None
        if self.k_device.type != "cpu":
            self._k_gen = torch.Generator(device=self.k_device).manual_seed(self.seed)
        self._next_chunk = 0

    def masks(
        self, chunk_index: int, chunk: int, draws: int, answer: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ks, masks)`` of chunk ``chunk_index``, see :func:`draw_masks`. ``answer``: this
        chunk's answer length where the document ends inside it (default ``chunk``); the chunks
        before it, replayed, had full answers."""
        if chunk_index < 0:
            raise ValueError(f"chunk index must be >= 0, got {chunk_index}")
        answer = chunk if answer is None else answer
        if not self.official_rng:
            gen = torch.Generator().manual_seed(chunk_seed(self.seed, chunk_index, self.stream))
            return draw_masks(answer, draws, gen)
        if chunk_index < self._next_chunk:
            self._reset()
        while self._next_chunk < chunk_index:  # replay chunks that were done earlier
            draw_masks(chunk, draws, self._gen, self._k_gen)
            self._next_chunk += 1
        self._next_chunk += 1
        return draw_masks(answer, draws, self._gen, self._k_gen)


def official_chunk_count(n_tokens: int, max_tokens: int, chunk: int = DEFAULT_CHUNK) -> int:
    """How many chunks the official diffusion script scores on a document of ``n_tokens``.

    It loops over ``max_tokens // chunk - 1`` chunks (255 at 16384) and takes chunk ``i``'s
    answer as ``ids[64 (i + 1) : 64 (i + 2)]``: a document that ends inside the last chunks gets
    a shorter answer there (the official behaviour, kept). A chunk whose answer would be empty
    made the official script fail (``randint(1, 1)``), so the count stops before it; a document
    with no token after its first chunk is an error.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    official = max_tokens // chunk - 1
    with_answer = (n_tokens - 1) // chunk  # chunks i with chunk (i + 1) < n_tokens
    if with_answer < 1 or official < 1:
        raise ValueError(
            f"the document has {n_tokens} tokens with this tokenizer: not one chunk of {chunk} "
            f"tokens plus an answer token (the PPL run needs at least {chunk + 1})"
        )
    return min(official, with_answer)


def _chunk_tensors(ids: torch.Tensor, chunk_index: int, chunk: int) -> tuple[torch.Tensor, int]:
    """Prompt + answer of chunk ``i`` (the first ``chunk (i + 2)`` tokens, fewer where the
    document ends inside the answer, as the official script) and the prompt length."""
    _check_ids(ids)
    if chunk < 1 or chunk_index < 0:
        raise ValueError(f"need chunk >= 1 and chunk index >= 0, got {chunk}, {chunk_index}")
    prompt_len = chunk * (chunk_index + 1)
    # At least one answer token: the official script failed on an empty answer.
    _require_tokens(ids, prompt_len + 1, f"chunk {chunk_index} (prompt + answer)")
    return ids[: prompt_len + chunk], prompt_len


def _noised_batch(
    seq: torch.Tensor, prompt_len: int, masks: torch.Tensor, mask_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``draws`` copies of prompt + answer with the masked answer tokens replaced by [MASK]."""
    full = torch.zeros(len(masks), len(seq), dtype=torch.bool, device=seq.device)
    full[:, prompt_len:] = masks.to(seq.device)
    noised = torch.where(full, torch.full_like(seq, mask_token_id), seq.expand(len(masks), -1))
    return noised, full


def _prediction_rows(model: torch.nn.Module, full: torch.Tensor) -> torch.Tensor:
    """Which logits rows predict the masked tokens ``full`` (bool ``[B, L]``).

    LLaDA predicts token ``p`` at output row ``p``. Dream keeps its autoregressive parent's
    shift: token ``p`` is predicted at row ``p - 1`` (its sampler uses
    ``cat(logits[:, :1], logits[:, :-1])``), so the index moves one row left; masked positions
    are answer positions (``p >= 1``), and the shift keeps the row-major order.
    """
    if getattr(model, "family", "llada") != "dream":
        return full
    shifted = torch.zeros_like(full)
    shifted[:, :-1] = full[:, 1:]
    return shifted


def masked_losses(
    model: torch.nn.Module,
    seq: torch.Tensor,
    prompt_len: int,
    masks: torch.Tensor,
    batched: bool = True,
    max_batch: int | None = None,
) -> list[torch.Tensor]:
    """Per-draw fp32 cross-entropies at the masked answer positions (row-major order).

    ``seq``: prompt + answer (1-D, on the model's device); ``masks``: bool ``[draws, answer]``.
    Fast path (``batched``): the draws go through the model together (``max_batch`` at a time,
    None = all at once) and the final norm + LM head run only on the masked rows (a bool
    ``logits_index``); at 16K context this skips a ``[draws, 16K, 126K]`` logits tensor.
    Plain path: one forward per draw with full logits, then the masked rows are picked.
    Both give the same numbers.
    """
    noised, full = _noised_batch(seq, prompt_len, masks, model.mask_token_id)
    targets = seq.expand(len(masks), -1)
    rows_index = _prediction_rows(model, full)
    empty = torch.zeros(0, device=seq.device)
    if not batched:
        out = []
        for d in range(len(masks)):
            if not full[d].any():  # nothing masked (possible in the ELBO's Bernoulli masking)
                out.append(empty)
                continue
            logits = _logits(model(noised[d : d + 1]))[0]
            out.append(_ce_fp32(logits[rows_index[d]], seq[full[d]]))
        return out
    step = len(masks) if max_batch is None else max_batch
    out = []
    for a in range(0, len(masks), step):
        b = a + step
        if not full[a:b].any():
            out.extend(empty for _ in range(len(full[a:b])))
            continue
        rows = _logits(model(noised[a:b], logits_index=rows_index[a:b]))
        losses = _ce_fp32(rows, targets[a:b][full[a:b]])
        # Row-major order: draw a's masked rows first, then draw a + 1's, ...
        out.extend(losses.split(full[a:b].sum(1).tolist()))
    return out


@torch.inference_mode()
def mc_chunk_loss(
    model: torch.nn.Module,
    ids: torch.Tensor,
    i: int,
    chunk: int = DEFAULT_CHUNK,
    draws: int = DEFAULT_DRAWS,
    sampler: MaskSampler | None = None,
    batched: bool = True,
) -> float:
    """The official Monte-Carlo loss of chunk ``i``: ``log ppl_i`` (nats per token).

    Prompt = first ``chunk (i + 1)`` tokens, answer = next ``chunk`` (fewer at the end of a
    short document, see :func:`official_chunk_count`); for each draw, exactly
    ``k ~ U{1..chunk}`` answer tokens are masked, the draw's loss is the mean cross-entropy over
    them; the chunk's loss is the mean over draws (``ppl_i = exp`` of it). The masks come from
    ``sampler`` (default: per-chunk seeds from 2025, see :class:`MaskSampler`) and are all drawn
    before any forward, so ``batched`` changes the work, not the result.

    Note: with exactly ``k`` of ``L`` tokens masked, the mean over the masked tokens equals
    ``(1/L) sum CE / (k/L)``, the LLaDA paper's lower-variance likelihood bound (its Eq. 14)
    per token; the official script differs from LLaDA's evaluation in using 8 draws, not 128,
    and unstratified ``k``.
    """
    return sum(mc_draw_losses(model, ids, i, chunk, draws, sampler, batched)) / draws


@torch.inference_mode()
def mc_draw_losses(
    model: torch.nn.Module,
    ids: torch.Tensor,
    i: int,
    chunk: int = DEFAULT_CHUNK,
    draws: int = DEFAULT_DRAWS,
    sampler: MaskSampler | None = None,
    batched: bool = True,
) -> list[float]:
    """The ``draws`` per-draw losses behind :func:`mc_chunk_loss` (e.g. to store per chunk)."""
    sampler = sampler if sampler is not None else MaskSampler()
    seq, prompt_len = _chunk_tensors(ids, i, chunk)
    # A shorter last answer draws k and the permutation over its own length, as the official.
    answer = len(seq) - prompt_len
    _, masks = sampler.masks(i, chunk, draws, answer=answer)
    # Draws go through the model together, at most _MC_BATCH_ROWS answer positions at a time
    # (the paper's 8 x 64 in one forward): thousands of draws at a 126K vocabulary would need
    # tens of GB of logits at once.
    max_batch = max(1, _MC_BATCH_ROWS // answer)
    per_draw = masked_losses(
        model, seq.to(_device(model)), prompt_len, masks, batched, max_batch=max_batch
    )
    return [float(loss.mean()) for loss in per_draw]


def mc_chunk_losses(
    model: torch.nn.Module,
    ids: torch.Tensor,
    n_chunks: int = DEFAULT_N_CHUNKS,
    chunk: int = DEFAULT_CHUNK,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    batched: bool = True,
    official_rng: bool = False,
) -> list[float]:
    """:func:`mc_chunk_loss` for chunks ``0..n_chunks-1`` in one go (no checkpointing)."""
    _check_ids(ids)
    _require_tokens(ids, chunk * (n_chunks + 1), f"{n_chunks} chunks of {chunk} tokens")
    k_device = _device(model) if official_rng else "cpu"
    sampler = MaskSampler(seed, official_rng=official_rng, k_device=k_device)
    return [mc_chunk_loss(model, ids, i, chunk, draws, sampler, batched) for i in range(n_chunks)]


def mc_ppl_curve(
    chunk_losses: Sequence[float], chunk: int = DEFAULT_CHUNK
) -> list[dict[str, float]]:
    """Running geometric mean of ``ppl_i = exp(loss_i)`` over chunks, at x = prompt length.

    Row ``i`` has ``context_tokens = chunk (i + 1)`` (the prompt length of chunk ``i``: 64..16320
    for the official 255 chunks, as in the published csv), ``ppl = exp(mean(loss_0..loss_i))``
    and ``chunk_ppl = exp(loss_i)``.
    """
    rows, total = [], 0.0
    for i, loss in enumerate(chunk_losses):
        total += loss
        rows.append(
            {
                "context_tokens": chunk * (i + 1),
                "ppl": math.exp(total / (i + 1)),
                "chunk_ppl": math.exp(loss),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# masked diffusion models: the ELBO estimator (option, not the paper's Figure 1a)


def draw_elbo_masks(
    chunk: int, draws: int, generator: torch.Generator, low_discrepancy: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``t`` (fp64 ``[draws]`` in (0, 1]) and Bernoulli(t) masks (bool ``[draws, chunk]``).

    ``low_discrepancy``: ``t_d = 1 - ((u + d / draws) mod 1)`` from one uniform ``u`` (the
    stratified times of Kingma et al. 2021, "Variational Diffusion Models"): same expectation,
    lower variance. Plain: independent ``t_d = 1 - u_d``.
    """
    if low_discrepancy:
        u = torch.rand((), generator=generator, dtype=torch.float64)
        u = (u + torch.arange(draws, dtype=torch.float64) / draws) % 1.0
    else:
        u = torch.rand(draws, generator=generator, dtype=torch.float64)
    t = 1.0 - u  # (0, 1]: t = 0 would divide by zero
    masks = torch.rand(draws, chunk, generator=generator, dtype=torch.float64) < t[:, None]
    return t, masks


@torch.inference_mode()
def elbo_chunk_loss(
    model: torch.nn.Module,
    ids: torch.Tensor,
    i: int,
    chunk: int = DEFAULT_CHUNK,
    draws: int = DEFAULT_ELBO_DRAWS,
    seed: int = DEFAULT_SEED,
    low_discrepancy: bool = False,
    batched: bool = True,
    max_batch: int = 8,
) -> float:
    """Per-token negative ELBO of chunk ``i`` (nats per token; ``exp`` bounds ppl_i from above).

    The LLaDA paper's bound (its Eq. 12, conditional form): ``t ~ U(0, 1]``, each answer token
    masked independently with probability ``t``, draw loss ``sum CE over masked / (t chunk)``,
    averaged over ``draws`` (128 in the LLaDA paper). Unlike :func:`mc_chunk_loss` the number of
    masked tokens is random (possibly 0, a zero term) and the ``1/t`` weight is explicit; its
    variance is higher for small ``t``. Same prompt/answer split; masks come from a per-chunk
    generator (:func:`chunk_seed` with stream "elbo"), so resumption is exact too.
    ``max_batch`` draws go through the model at a time.
    """
    seq, prompt_len = _chunk_tensors(ids, i, chunk)
    answer = len(seq) - prompt_len  # shorter than chunk where the document ends
    gen = torch.Generator().manual_seed(chunk_seed(seed, i, "elbo"))
    t, masks = draw_elbo_masks(answer, draws, gen, low_discrepancy)
    per_draw = masked_losses(
        model, seq.to(_device(model)), prompt_len, masks, batched, max_batch=max_batch
    )
    terms = [
        float(loss.double().sum()) / (float(t_d) * answer)
        for loss, t_d in zip(per_draw, t, strict=True)
    ]
    return sum(terms) / draws
