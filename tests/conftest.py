"""Shared pytest fixtures."""

from fake_hub import fake_hub  # noqa: F401  (fixture: a local fake Hugging Face hub)
