"""Greedy decoding for the autoregressive baselines (LLaMA 3), through `transformers`.

The paper decoded LLaMA 3 with HF `generate`, greedy, batch size 1, no chat template; stop words
and answer post-processing are the benchmark's concern, not this module's.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def generate_greedy(
    model: torch.nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    eos_token_ids: list[int] | None = None,
) -> torch.Tensor:
    """Greedy continuation of `prompt` ([1, P]) -> the new tokens only, [1, n], n <= max_new_tokens.

    Stops after an eos token (which is included, as `generate` returns it). `eos_token_ids=None`
    uses the model's generation config, as the paper did (LLaMA 3 Instruct's lists <|eot_id|>).
    """
    if prompt.dim() != 2 or prompt.shape[0] != 1:
        raise ValueError(f"prompt must have shape [1, P] (batch size 1), got {tuple(prompt.shape)}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    kwargs: dict[str, object] = {}
    eos = eos_token_ids
    if eos is not None:
        kwargs["eos_token_id"] = list(eos)
    else:
        eos = model.generation_config.eos_token_id
    if isinstance(eos, int):
        eos = [eos]
    # Padding never happens at batch size 1, but generate wants a pad id; LLaMA 3 has none.
    pad = model.generation_config.pad_token_id
    if pad is None and eos:
        pad = eos[0]
    out = model.generate(
        prompt,
        # Explicit all-ones mask: without it generate guesses padding from pad == eos.
        attention_mask=torch.ones_like(prompt),
        do_sample=False,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad,
        **kwargs,
    )
    return out[:, prompt.shape[1] :]
