"""The provenance record written into every result file."""

from __future__ import annotations

import json

from longllada.provenance import Stopwatch, record

KEYS = {
    "stage",
    "model",
    "rope",
    "settings",
    "seed",
    "packages",
    "device",
    "pipeline_commit",
    "wall_seconds",
    "started_unix",
    "finished_unix",
}


def make_record() -> dict:
    return record(
        "stage",
        watch=Stopwatch(),
        model={"id": "GSAI-ML/LLaDA-8B-Instruct", "revision": "main", "commit": "abc123"},
        rope={"theta_before": 500000.0, "theta_after": 7000000.0, "lambda": 14.0},
        settings={"steps": 64, "block_length": 32},
        seed=2025,
    )


def test_record_fields():
    rec = make_record()
    assert set(rec) == KEYS
    assert rec["stage"] == "stage"
    assert rec["model"]["id"] == "GSAI-ML/LLaDA-8B-Instruct"
    assert rec["rope"]["lambda"] == 14.0
    assert rec["settings"] == {"steps": 64, "block_length": 32}
    assert rec["seed"] == 2025

    packages = rec["packages"]
    for name in ("python", "torch", "transformers"):
        assert isinstance(packages[name], str) and packages[name]
    assert all(v is None or isinstance(v, str) for v in packages.values())
    # absent packages are recorded as None rather than left out
    assert "flash-attn" in packages
    assert packages["flash-attn"] is None or isinstance(packages["flash-attn"], str)

    device = rec["device"]
    assert isinstance(device["host"], str) and device["host"]
    assert device["cuda"] is False  # CPU test machine

    assert rec["pipeline_commit"] is None or isinstance(rec["pipeline_commit"], str)
    assert rec["wall_seconds"] >= 0
    assert rec["started_unix"] <= rec["finished_unix"]

    assert json.loads(json.dumps(rec)) == rec


def test_absent_package_maps_to_none():
    from longllada.provenance import package_versions

    versions = package_versions(("torch", "no-such-package-longllada-xyz"))
    assert isinstance(versions["torch"], str)
    assert versions["no-such-package-longllada-xyz"] is None


def test_record_does_not_leak_hf_token(monkeypatch):
    secret = "hf_SeCrEtTokenForProvenanceTest0123456789"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", secret)
    text = json.dumps(make_record())
    assert secret not in text
    assert "SeCrEt" not in text
