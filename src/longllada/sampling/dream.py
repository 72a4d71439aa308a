"""Dream's sampler, with the semantics of its official `diffusion_generate`.

Semantics (MODELS.md, "Dream sampler"): the whole answer region is decoded together, no blocks.
Over `steps` steps of the time grid linspace(1, eps, steps + 1), each step runs one forward,
samples a token for every masked position and commits int(n_mask * (1 - s/t)) of them by
confidence (the last step commits all). Dream is adapted from an autoregressive model, so the
prediction for position i is the model's output at position i - 1 (position 0 uses its own row).

Sampling as the paper ran it (`sampling="paper"`, the default): the official sampler draws with
`torch.distributions.Categorical(probs=...).sample()` inside a bare `try/except` that falls back
to the argmax for the whole call. Categorical normalises the probabilities and then checks, in
their dtype, that every row sums to 1 within 1e-6; in bf16 that check often fails (a row's
bf16 sum is 1 only to about 2**-8), so the published Dream runs were partly greedy, and a
fallback call draws no random numbers, which shifts the random stream of every later draw. Here
the same check decides the same fallback, and the draws are the same `torch.multinomial` call
that Categorical makes. `sampling="clean"` always samples (the fallback is a defect of the
official code, kept by default for fidelity). `stats`, when given, counts the sampling calls
and the fallbacks.

Prompt handling is the caller's: the paper prepends the tokenizer's bos to Dream prompts.
Arithmetic stays in the logits' dtype (bf16 in the paper), as the official code's does.

`fast=True` (default) computes the final norm + LM head only on the rows feeding masked
positions (only those being committed, for alg "origin"); the plain path computes all rows and
shifts them, as the official code does. Random draws have the same shapes in both paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

ALGS = ("origin", "maskgit_plus", "topk_margin", "entropy")
SAMPLING = ("paper", "clean")
SIMPLEX_TOLERANCE = 1e-6  # torch.distributions.constraints.simplex


@dataclass(frozen=True)
class DreamSettings:
    """Sampler settings; the defaults are the paper's (steps 32 for NIAH, bf16)."""

    steps: int
    alg: str = "entropy"
    temperature: float = 0.2
    top_p: float | None = 0.95
    top_k: int | None = None
    alg_temp: float | None = None
    eps: float = 1e-3
    sampling: str = "paper"  # "paper": the official Categorical check and argmax fallback

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got {self.sampling!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.alg not in ALGS:
            raise ValueError(f"alg must be one of {ALGS}, got {self.alg!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] or None, got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")
        if self.alg_temp is not None and self.alg_temp < 0:
            raise ValueError(f"alg_temp must be >= 0 or None, got {self.alg_temp}")
        if not 0 < self.eps < 1:
            raise ValueError(f"eps must be in (0, 1), got {self.eps}")


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompt: torch.Tensor,
    gen_length: int,
    s: DreamSettings,
    *,
    generator: torch.Generator | None = None,
    fast: bool = True,
    stats: dict[str, int] | None = None,
) -> torch.Tensor:
    """Decode `gen_length` tokens after `prompt` ([1, P], on the model's device) -> [1, gen_length].

    `generator` (on the prompt's device) drives every random draw: token sampling when
    temperature > 0, the transfer draws of "origin", the position sampling of alg_temp.
    `stats`: incremented in place: "sampling_calls" and "greedy_fallbacks" (paper sampling).
    """
    family = getattr(model, "family", "dream")
    if family != "dream":
        raise ValueError(f"the Dream sampler needs a Dream model, got family {family!r}")
    if prompt.dim() != 2 or prompt.shape[0] != 1:
        raise ValueError(f"prompt must have shape [1, P] (batch size 1), got {tuple(prompt.shape)}")
    if gen_length < 1:
        raise ValueError(f"gen_length must be >= 1, got {gen_length}")

    mask_id = model.mask_token_id
    n_prompt = prompt.shape[1]
    x = torch.full((1, n_prompt + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    x[:, :n_prompt] = prompt
    timesteps = torch.linspace(1, s.eps, s.steps + 1, device=x.device)
    for i in range(s.steps):
        mask_index = x == mask_id
        positions = mask_index[0].nonzero().squeeze(1)
        if positions.numel() == 0:
            break  # only "origin" can finish early; later steps would change nothing
        t, s_next = timesteps[i], timesteps[i + 1]
        last = i == s.steps - 1
        # The plain path computes every row up front; the fast one only the rows it reads.
        all_logits = None if fast else _shifted_all(model, x)
        if s.alg == "origin":
            # Each masked token is revealed with probability 1 - s/t (1 at the last step).
            p_transfer = 1 if last else 1 - s_next / t
            draws = torch.rand(positions.shape, device=x.device, generator=generator)
            chosen = positions[draws < p_transfer]
            if chosen.numel():
                _, x0 = _sample_tokens(_rows_at(model, x, chosen, all_logits), s, generator, stats)
                x[0, chosen] = x0
            continue

        logits = _rows_at(model, x, positions, all_logits)
        confidence, x0 = _sample_tokens(logits, s, generator, stats)
        # Float32 tensor arithmetic, as officially: the truncation must see the same rounding.
        n_mask = mask_index.sum() / mask_index.shape[0]
        k = int(n_mask) if last else int(n_mask * (1 - s_next / t))
        if k == 0:
            continue
        # Full-length confidences ([1, L], -inf off the masks, in the logits' dtype as
        # officially) in both paths, so the selection sees identical inputs.
        full = torch.full(x.shape, -torch.inf, dtype=logits.dtype, device=x.device)
        full[0, positions] = confidence.to(logits.dtype)
        if not s.alg_temp:
            chosen = torch.topk(full[0], k).indices
        else:
            weights = F.softmax(full[0] / s.alg_temp, dim=-1)
            chosen = torch.multinomial(weights, k, replacement=False, generator=generator)
        proposal = torch.full_like(x, mask_id)
        proposal[0, positions] = x0
        x[0, chosen] = proposal[0, chosen]
    return x[:, n_prompt:]


def _shifted_all(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """All rows, shifted right by one: row i is the output at i - 1; row 0 keeps its own."""
    logits = model(x, logits_index=None)
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


def _rows_at(
    model: torch.nn.Module,
    x: torch.Tensor,
    positions: torch.Tensor,
    all_logits: torch.Tensor | None,
) -> torch.Tensor:
    """Shifted logits [n, V] for `positions`: read from `all_logits`, or computed (fast path)."""
    if all_logits is None:
        return _shifted_rows(model, x, positions)
    return all_logits[0, positions]


def _shifted_rows(model: torch.nn.Module, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """`_shifted_all(model, x)[0, positions]`, computing only the output rows it needs."""
    sources = (positions - 1).clamp(min=0)
    # Positions 0 and 1 both read row 0: compute each row once and fan it back out.
    rows, inverse = torch.unique(sources, return_inverse=True)
    return model(x, logits_index=rows)[0, inverse]


def passes_categorical_check(normalised: torch.Tensor) -> bool:
    """Whether `torch.distributions.Categorical(probs=...)` accepts these (already normalised)
    rows: its simplex check, in the rows' own dtype."""
    rows_ok = torch.all(normalised >= 0, dim=-1) & (
        (normalised.sum(-1) - 1).abs() < SIMPLEX_TOLERANCE
    )
    return bool(rows_ok.all())


def _sample_tokens(
    logits: torch.Tensor,
    s: DreamSettings,
    generator: torch.Generator | None,
    stats: dict[str, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, token) per row of `logits` [n, V], by the settings' alg."""
    if s.temperature > 0:
        logits = logits / s.temperature
    if s.top_p is not None and s.top_p < 1:
        logits = _top_p_filter(logits, s.top_p)
    if s.top_k is not None:
        logits = _top_k_filter(logits, s.top_k)
    probs = torch.softmax(logits, dim=-1)
    if s.temperature > 0:
        # Categorical sampling (normalised first, as torch.distributions.Categorical does).
        normalised = probs / probs.sum(dim=-1, keepdim=True)
        fallback = s.sampling == "paper" and not passes_categorical_check(normalised)
        if stats is not None:
            stats["sampling_calls"] = stats.get("sampling_calls", 0) + 1
            stats["greedy_fallbacks"] = stats.get("greedy_fallbacks", 0) + int(fallback)
        if fallback:  # the official `except:` branch: argmax for every row, no draw
            confidence, x0 = probs.max(dim=-1)
        else:
            x0 = torch.multinomial(normalised, 1, replacement=True, generator=generator)
            x0 = x0.squeeze(-1)
            confidence = probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    else:
        confidence, x0 = probs.max(dim=-1)
    if s.alg == "topk_margin":
        top2 = probs.topk(2, dim=-1).values
        confidence = top2[:, 0] - top2[:, 1]
    elif s.alg == "entropy":
        # Negative entropy: high when the distribution is peaked. The 1e-10 guards log(0).
        confidence = (probs * torch.log(probs + 1e-10)).sum(dim=-1)
    return confidence, x0


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter: keep the most likely tokens until their mass exceeds top_p (inclusive)."""
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    # A token goes when the mass *before* it already exceeds top_p; the top token always stays.
    drop_sorted = torch.zeros_like(cumulative, dtype=torch.bool)
    drop_sorted[..., 1:] = cumulative[..., :-1] > top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, torch.finfo(logits.dtype).min)


def _top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the top_k logits (and any tied with the k-th)."""
    kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)
