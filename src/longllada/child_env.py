"""The environment of a child interpreter that runs code this project did not write (the
checkpoints' hub code for `verify`, OpenCompass for the benchmark stages)."""

from __future__ import annotations

import os

# Variables such a child must never see: credentials (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, any
# other *_TOKEN) and where a stored token would be read from.
SECRET_SUFFIXES = ("_TOKEN", "_TOKEN_PATH", "_TOKENS_PATH", "_API_KEY", "_SECRET", "_PASSWORD")


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment less PYTHONPATH (the child has its own packages) and every
    credential variable (SECRET_SUFFIXES), plus `overrides`. The children work on local files
    offline: they need no token, and downloaded code must not be handed one."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().endswith(SECRET_SUFFIXES) and name != "PYTHONPATH"
    }
    env.update(overrides)
    return env
