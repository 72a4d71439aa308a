"""Model code: our own LLaDA and Dream implementations under their hub tensor names, LLaMA via
transformers, and a strict shard-by-shard loader for all three."""

from longllada.models.loading import (
    CheckpointError,
    UnsupportedConfigError,
    load_model,
    load_tokenizer,
)

__all__ = ["CheckpointError", "UnsupportedConfigError", "load_model", "load_tokenizer"]
