"""Benchmark facts, prompt building and scoring (OpenCompass underneath)."""
