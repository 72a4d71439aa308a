"""Samplers: turn a prompt into generated tokens.

- `llada`: the official LLaDA semi-autoregressive block sampler (low-confidence remasking),
  plus the official wrapper's length rounding and its `steps` cap (`StepsPolicy`, which also
  reproduces the wrapper's sticky-steps defect on request; it applies to Dream as well).
- `dream`: Dream's official `diffusion_generate` (whole region at once, shifted logits).
- `autoregressive`: greedy decoding for LLaMA 3 through `transformers`' `generate`.

Both diffusion samplers have a plain path that mirrors the official code densely and a fast path
(the default) that computes the LM head only on the rows whose prediction can be used; the two
give identical tokens, including the random draws, which both paths take with the same shapes.
"""
