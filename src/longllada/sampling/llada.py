"""LLaDA's block sampler with low-confidence remasking, as used by the paper.

Semantics (MODELS.md, "LLaDA sampler"): the answer region starts as `gen_length` mask tokens and
is decoded block by block, left to right; each block gets `steps // num_blocks` steps, and each
step runs one forward over the whole sequence, predicts every masked token (argmax, Gumbel-max
when temperature > 0) and commits the k most confident predictions of the current block.

`fast=True` (default) differs from the official code only in how much it computes, never in
what it returns: the final norm + LM head and the softmax run on the current block's masked rows
only (at 32K context the full logits tensor alone is 8 GB in fp16). Random draws are taken with
the official shapes in both paths, so a seeded generator gives the same tokens either way.

The official wrapper's length and steps handling live here too (`official_gen_length`,
`StepsPolicy`), since a run must apply them the same way to reproduce the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

REMASKING = ("low_confidence", "random")


@dataclass(frozen=True)
class LLaDASettings:
    """Sampler settings. The paper: steps = block_length = 32 (NIAH), temperature 0, cfg 0."""

    steps: int
    block_length: int
    temperature: float = 0.0
    cfg_scale: float = 0.0
    remasking: str = "low_confidence"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.block_length < 1:
            raise ValueError(f"block_length must be >= 1, got {self.block_length}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.cfg_scale < 0:
            raise ValueError(f"cfg_scale must be >= 0, got {self.cfg_scale}")
        if self.remasking not in REMASKING:
            raise ValueError(f"remasking must be one of {REMASKING}, got {self.remasking!r}")


def official_gen_length(max_new_tokens: int, block_length: int) -> int:
    """The answer length the paper's wrapper actually generates: rounded up to whole blocks.

    The wrapper does this silently, so e.g. a 100-token LongBench budget with block 64 decodes
    128 tokens (and the scorer sees them all). Kept explicit so a run records what it did.
    """
    if max_new_tokens < 1 or block_length < 1:
        raise ValueError("max_new_tokens and block_length must be >= 1")
    return -(-max_new_tokens // block_length) * block_length


class StepsPolicy:
    """How many sampling steps a call gets when the answer is shorter than the configured steps.

    The official wrapper caps `steps` at the generated length (more steps than tokens would only
    add steps that commit nothing). It does so by writing the cap into the diffusion config dict
    it shares across calls and never restores it, so every later dataset in the same process runs
    with the lowest cap seen so far, even with a longer answer (a defect: e.g. after a 32-token
    dataset, a 512-token summary task is decoded with 32 steps instead of 512).

    - `StepsPolicy()` (correct, default): `min(requested_steps, gen_length)` per call, no memory.
    - `StepsPolicy(sticky=True)` reproduces the defect: one instance stands for one official model
      instance (one shared dict, whose configured steps never change), and it remembers the
      lowest value applied so far and applies it to later calls too.

    Both samplers use it the same way; for LLaDA, `gen_length` is the rounded length (the wrapper
    caps after rounding), for Dream the requested output length.
    """

    def __init__(self, sticky: bool = False) -> None:
        self.sticky = sticky
        self._lowest: int | None = None

    def steps_for(self, requested_steps: int, gen_length: int) -> int:
        steps = min(requested_steps, gen_length)
        if not self.sticky:
            return steps
        if self._lowest is not None:
            steps = min(steps, self._lowest)
        self._lowest = steps
        return steps


def transfer_schedule(n_masked: int, steps: int) -> list[int]:
    """Tokens committed at each of a block's steps: an even split, remainder to the first steps.

    The even split follows from LLaDA's linear noise schedule (equal expected transitions per
    step of a uniform time grid).
    """
    base, remainder = divmod(n_masked, steps)
    return [base + 1] * remainder + [base] * (steps - remainder)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompt: torch.Tensor,
    gen_length: int,
    s: LLaDASettings,
    *,
    generator: torch.Generator | None = None,
    fast: bool = True,
) -> torch.Tensor:
    """Decode `gen_length` tokens after `prompt` ([1, P], on the model's device) -> [1, gen_length].

    `gen_length` must be a multiple of `s.block_length` (see `official_gen_length`) and `s.steps`
    a multiple of the number of blocks, as the official code asserts. `generator` drives every
    random draw (Gumbel noise when temperature > 0, the confidences of "random" remasking); it
    must live on the prompt's device. Without one, torch's global generator is used.
    """
    _check_call(model, prompt, gen_length, s)
    mask_id = model.mask_token_id
    n_prompt = prompt.shape[1]
    x = torch.full((1, n_prompt + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    x[:, :n_prompt] = prompt
    # As in the official code, "prompt" means the non-mask tokens at the start; the unconditional
    # (cfg) pass masks exactly these.
    prompt_index = x != mask_id

    num_blocks = gen_length // s.block_length
    steps_per_block = s.steps // num_blocks
    step = _fast_step if fast else _plain_step
    for b in range(num_blocks):
        block_start = n_prompt + b * s.block_length
        block_end = block_start + s.block_length
        n_masked = int((x[:, block_start:block_end] == mask_id).sum())
        for k in transfer_schedule(n_masked, steps_per_block):
            x0, confidence = step(model, x, prompt_index, block_end, s, generator)
            # Both paths hand over full-length [1, L] vectors that agree element for element
            # (given the model computes a row alike whichever rows are asked for), so topk, tie
            # breaking included, picks the same positions in both.
            chosen = torch.topk(confidence[0], k=k).indices
            x[0, chosen] = x0[0, chosen]
    return x[:, n_prompt:]


def _check_call(
    model: torch.nn.Module, prompt: torch.Tensor, gen_length: int, s: LLaDASettings
) -> None:
    family = getattr(model, "family", "llada")
    if family != "llada":
        raise ValueError(f"the LLaDA sampler needs a LLaDA model, got family {family!r}")
    if prompt.dim() != 2 or prompt.shape[0] != 1:
        raise ValueError(f"prompt must have shape [1, P] (batch size 1), got {tuple(prompt.shape)}")
    if gen_length < 1:
        raise ValueError(f"gen_length must be >= 1, got {gen_length}")
    if gen_length % s.block_length:
        raise ValueError(
            f"gen_length ({gen_length}) must be a multiple of block_length ({s.block_length}); "
            "official_gen_length() rounds it up as the paper's wrapper does"
        )
    num_blocks = gen_length // s.block_length
    if s.steps % num_blocks:
        raise ValueError(
            f"steps ({s.steps}) must be a multiple of the number of blocks "
            f"(gen_length // block_length = {num_blocks})"
        )


def _logits(
    model: torch.nn.Module,
    x: torch.Tensor,
    prompt_index: torch.Tensor,
    cfg_scale: float,
    rows: torch.Tensor | None,
) -> torch.Tensor:
    """Logits [1, L or len(rows), V], with classifier-free guidance when cfg_scale > 0."""
    if cfg_scale == 0:
        return model(x, logits_index=rows)
    # Unconditional pass: the same sequence with the prompt masked out, in the same forward.
    un_x = x.clone()
    un_x[prompt_index] = model.mask_token_id
    cond, uncond = model(torch.cat([x, un_x]), logits_index=rows).chunk(2)
    return uncond + (cfg_scale + 1) * (cond - uncond)


def _predict(logits: torch.Tensor, noise: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """x0 = argmax over the vocabulary, after Gumbel-max perturbation when temperature > 0.

    Gumbel-max in the official form exp(logits) / (-log u)^T, in float64: low precision here
    is known to hurt generation quality (arXiv 2409.02908).
    """
    if noise is None:
        return logits.argmax(dim=-1)
    return (logits.double().exp() / (-torch.log(noise)) ** temperature).argmax(dim=-1)


def _draw_gumbel_uniforms(
    logits_shape: tuple[int, ...],
    s: LLaDASettings,
    device: torch.device,
    generator: torch.Generator | None,
) -> torch.Tensor | None:
    if s.temperature == 0:
        return None
    return torch.rand(logits_shape, dtype=torch.float64, device=device, generator=generator)


def _plain_step(
    model: torch.nn.Module,
    x: torch.Tensor,
    prompt_index: torch.Tensor,
    block_end: int,
    s: LLaDASettings,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step densely over all L rows, as the official code does it."""
    mask_index = x == model.mask_token_id
    logits = _logits(model, x, prompt_index, s.cfg_scale, None)
    noise = _draw_gumbel_uniforms(tuple(logits.shape), s, x.device, generator)
    x0 = _predict(logits, noise, s.temperature)
    if s.remasking == "low_confidence":
        # Softmax in the logits' dtype (fp16 in the paper), as officially; no upcast.
        p = F.softmax(logits, dim=-1)
        x0_p = torch.gather(p, -1, x0.unsqueeze(-1)).squeeze(-1)
    else:
        x0_p = torch.rand(x0.shape, device=x.device, generator=generator)
    x0_p[:, block_end:] = -torch.inf
    x0 = torch.where(mask_index, x0, x)
    confidence = torch.where(mask_index, x0_p, -torch.inf)
    return x0, confidence


def _fast_step(
    model: torch.nn.Module,
    x: torch.Tensor,
    prompt_index: torch.Tensor,
    block_end: int,
    s: LLaDASettings,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same step, with logits and softmax only where the confidence can be finite.

    Those rows are the masked positions up to the end of the current block: in practice the
    current block's masked tokens (earlier blocks are complete; a prompt has no mask tokens).
    """
    candidates = x == model.mask_token_id
    candidates[:, block_end:] = False
    rows = candidates[0].nonzero().squeeze(1)
    logits = _logits(model, x, prompt_index, s.cfg_scale, rows)  # [1, n, V]
    noise = None
    if s.temperature > 0:
        # Drawn over the full [1, L, V] shape, as the plain path does, then the used rows taken:
        # exact, at the cost of that tensor's memory (temperature > 0 is not used by the paper).
        shape = (1, x.shape[1], logits.shape[-1])
        noise = _draw_gumbel_uniforms(shape, s, x.device, generator)[:, rows]
    x0_rows = _predict(logits, noise, s.temperature)
    if s.remasking == "low_confidence":
        p = F.softmax(logits, dim=-1)
        conf_rows = torch.gather(p, -1, x0_rows.unsqueeze(-1)).squeeze(-1)
    else:
        conf_rows = torch.rand(x.shape, device=x.device, generator=generator)[:, rows]
    x0 = x.clone()
    x0[0, rows] = x0_rows[0]
    confidence = torch.full(x.shape, -torch.inf, dtype=conf_rows.dtype, device=x.device)
    confidence[0, rows] = conf_rows[0]
    return x0, confidence
