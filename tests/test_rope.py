"""The scaling law of TARGETS.md and the RoPE-patched checkpoint."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import transformers

from longllada import demo, rope


@pytest.mark.parametrize(("t_target", "lam"), [(8192, 4), (16384, 14), (24576, 31), (32768, 55)])
def test_llada_lambdas(t_target: int, lam: int) -> None:
    s = rope.scaling_for_target(500_000, 128, 4096, t_target)
    assert s.d_crit == 64
    assert s.ntk_lambda == lam
    assert s.new_theta == 500_000 * lam


@pytest.mark.parametrize(("t_target", "lam"), [(16384, 4), (32768, 13)])
def test_llama3_lambdas(t_target: int, lam: int) -> None:
    s = rope.scaling_for_target(500_000, 128, 8192, t_target)
    assert s.d_crit == 70
    assert s.ntk_lambda == lam


def test_dream_lambda_needs_t_train_2048() -> None:
    assert rope.scaling_for_target(1_000_000, 128, 2048, 4096).ntk_lambda == 5
    assert rope.scaling_for_target(1_000_000, 128, 4096, 4096).ntk_lambda == 1


def test_niah_label_is_not_a_target() -> None:
    # TARGETS.md: 16000 (a NIAH length label) would give 13, not the paper's 14.
    assert rope.scaling_for_target(500_000, 128, 4096, 16000).ntk_lambda == 13


@pytest.mark.parametrize(
    ("t_target", "raw", "lam"),
    [(8192, 3.5, 4), (16384, 12.5, 13), (24576, 26.3, 27), (32768, 44.5, 45)],
)
def test_diffusion_aware_variant(t_target: int, raw: float, lam: int) -> None:
    s = rope.scaling_for_target(500_000, 128, 4096, t_target, "diffusion_aware")
    assert s.d_crit == 70
    assert s.lambda_raw == pytest.approx(raw, abs=0.05)
    assert s.ntk_lambda == lam


def test_t_extra_covers_the_target() -> None:
    for t in (8192, 16384, 24576, 32768):
        s = rope.scaling_for_target(500_000, 128, 4096, t)
        assert s.t_extra >= t
        assert s.t_extra == pytest.approx(2 * math.pi * (s.ntk_lambda * 500_000) ** (64 / 128))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        rope.scaling_for_lambda(500_000, 128, 4096, 0.5)
    with pytest.raises(ValueError, match="unknown NTK variant"):
        rope.scaling_for_target(500_000, 128, 4096, 8192, "yarn")
    with pytest.raises(ValueError, match="positive"):
        rope.scaling_for_target(500_000, 128, 4096, 0)


def test_format_lambda() -> None:
    assert rope.format_lambda(4.0) == "4"
    assert rope.format_lambda(2.5) == "2.5"


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    out = {}
    for family in ("llama", "llada", "dream"):
        out[family] = demo.build_demo_checkpoint(
            family, root / family, seed=0, rope_theta=10_000.0, **_sizes(family)
        )
    return out


def _sizes(family: str) -> dict:
    return {k: v for k, v in demo.PRESETS["tiny"][family].items()}


@pytest.mark.parametrize("family", ["llama", "llada", "dream"])
def test_patch_links_and_config(tiny_checkpoints: dict[str, Path], tmp_path: Path, family: str):
    src = tiny_checkpoints[family]
    scaling = rope.scaling_for_lambda(10_000.0, 16, 256, 3)
    out = tmp_path / "ntk3"
    record = rope.patch_checkpoint(src, out, scaling, source={"commit_sha": "abc"})
    assert record["old_theta"] == 10_000.0 and record["new_theta"] == 30_000.0
    assert record["d_crit"] == scaling.d_crit and record["t_extra"] == scaling.t_extra
    for f in src.iterdir():
        if f.name == "config.json":
            continue
        link = out / f.name
        assert link.is_symlink(), f"{f.name} must be a link, never a copy"
        assert link.resolve() == f.resolve()
    patched = json.loads((out / "config.json").read_text())
    original = json.loads((src / "config.json").read_text())
    assert rope.read_rope(patched) == (30_000.0, 16)
    # nothing but the theta changed
    assert {k for k in original if original[k] != patched[k]} <= {"rope_theta", "rope_parameters"}


def test_transformers_reads_the_patched_llama_theta(
    tiny_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    scaling = rope.scaling_for_lambda(10_000.0, 16, 512, 11)
    rope.patch_checkpoint(tiny_checkpoints["llama"], tmp_path / "p", scaling)
    cfg = transformers.AutoConfig.from_pretrained(tmp_path / "p")
    assert cfg.rope_parameters["rope_theta"] == 110_000.0


def test_transformers_reads_a_legacy_top_level_theta(tmp_path: Path) -> None:
    # The hub's Meta-Llama-3-8B config.json has a top-level rope_theta (transformers 4 style).
    cfg = transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=1)
    legacy = cfg.to_dict()
    legacy.pop("rope_parameters", None)
    legacy["rope_theta"] = 500_000.0
    patched = rope.patched_config(legacy, 2_000_000.0)
    (tmp_path / "config.json").write_text(json.dumps(patched))
    loaded = transformers.AutoConfig.from_pretrained(tmp_path)
    assert loaded.rope_parameters["rope_theta"] == 2_000_000.0


def test_patch_refuses_a_checkpoint_that_disagrees(tiny_checkpoints, tmp_path: Path) -> None:
    scaling = rope.scaling_for_lambda(500_000.0, 16, 256, 3)  # the checkpoint has 1e4
    with pytest.raises(ValueError, match="rope_theta=10000"):
        rope.patch_checkpoint(tiny_checkpoints["llada"], tmp_path / "x", scaling)


def _tiny_entry(local_dir: Path | None = None):
    from longllada.config import Model

    return Model(
        key="m",
        label="m",
        family="llada",
        variant="base",
        t_train=256,
        rope_theta=10_000.0,
        head_dim=16,
        dtype="float32",
        local_dir=str(local_dir) if local_dir else None,
        demo=None if local_dir else {"preset": "tiny", "seed": 0},
    )


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_a_copied_project_loads_its_own_patched_view(
    tiny_checkpoints: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """`cp -a` of a built project, the original deleted: the RoPE view's links are relative,
    so the copy's view reaches the copy's shards; a checkpoint outside the project (a local_dir
    elsewhere) is linked by its absolute path, which the copy still finds."""
    import shutil

    from longllada import checkpoints
    from longllada.models import load_model

    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    if where == "inside":
        snapshot = project / "results/demo_hub/m"
        shutil.copytree(tiny_checkpoints["llada"], snapshot)
        model = _tiny_entry()
    else:
        snapshot = tmp_path / "shared/llada"
        shutil.copytree(tiny_checkpoints["llada"], snapshot)
        model = _tiny_entry(snapshot)
    manifest = Path("results/checkpoints/m/download.json")
    checkpoints.materialize(model, snapshot, manifest)
    scaling = rope.scaling_for_lambda(10_000.0, 16, 256, 3)
    record = Path("results/checkpoints/m/ntk3/rope_patch.json")
    checkpoints.patch(scaling, manifest, record)
    links = [p for p in record.parent.iterdir() if p.is_symlink()]
    assert links and all(os.path.isabs(os.readlink(p)) == (where == "outside") for p in links)

    copy = tmp_path / "a/b/copy"
    shutil.copytree(project, copy, symlinks=True)
    monkeypatch.chdir(copy)
    shutil.rmtree(project)
    view = checkpoints.model_dir(record)
    assert view == Path("results/checkpoints/m/ntk3")
    shards = [p for p in links if p.name.endswith(".safetensors")]
    expected = copy / "results/demo_hub/m" if where == "inside" else snapshot
    assert all((view / p.name).resolve().parent == expected.resolve() for p in shards)
    net = load_model(view, "llada")
    assert net.config.rope_theta == 30_000.0

    # The view's own config.json must still hold the theta its record wrote.
    from longllada import hub

    config = json.loads((view / "config.json").read_text())
    (view / "config.json").write_text(json.dumps(config | {"rope_theta": 10_000.0}))
    with pytest.raises(hub.DownloadError, match=r"config.json has rope_theta 10000, but the RoPE"):
        checkpoints.model_dir(record)
