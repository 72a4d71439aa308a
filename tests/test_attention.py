"""The attention kernel of each family (`models.<key>.attn_impl`), as the paper's runs ran it.

No GPU and no flash-attn here: "flash-attn installed" is a fake `flash_attn` module whose
`flash_attn_func` checks flash-attn's [B, L, H, D] layout and computes the same attention with
SDPA on the CPU, and "on a CUDA device" is a `torch.device("cuda")` handed to the resolution
(only its type is read; nothing is allocated there).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from longllada import checkpoints, fingerprints, provenance
from longllada.config import ConfigError, Model, Run, Study
from longllada.demo import PRESETS, build_demo_checkpoint
from longllada.models import load_model, loading
from longllada.models.dream import DreamModel
from longllada.models.llada import LLaDAConfig, LLaDAModelLM
from longllada.models.loading import AttentionUnavailableError, resolve_attention
from longllada.stages import qk_states
from longllada.stages.common import load_run_model

ROOT = Path(__file__).resolve().parents[1]
CPU, CUDA = torch.device("cpu"), torch.device("cuda")
LOADER_FAMILY = {"llama": "ar", "llada": "llada", "dream": "dream"}
LOG = "longllada.models.loading"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("attention")
    return {
        f: build_demo_checkpoint(f, root / f, **PRESETS["tiny"][f])
        for f in ("llama", "llada", "dream")
    }


@pytest.fixture
def no_flash(monkeypatch: pytest.MonkeyPatch) -> None:
    """flash-attn not installed, whatever this machine has (a None entry stops the import)."""
    monkeypatch.setitem(sys.modules, "flash_attn", None)


@pytest.fixture
def fake_flash(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """A `flash_attn` with flash-attn's interface, computing with SDPA; returns the q shapes it
    was called with."""
    calls: list[tuple[int, ...]] = []

    def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False):
        # flash-attn's layout: [B, L, H, D], k and v with H_kv heads (GQA), same B and L.
        assert causal is False and dropout_p == 0.0 and softmax_scale is None
        assert q.dim() == k.dim() == v.dim() == 4
        assert k.shape[:2] == q.shape[:2] and k.shape == v.shape
        assert q.shape[2] % k.shape[2] == 0 and q.shape[3] == k.shape[3]
        calls.append(tuple(q.shape))
        n_rep = q.shape[2] // k.shape[2]
        qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))
        kh, vh = kh.repeat_interleave(n_rep, dim=1), vh.repeat_interleave(n_rep, dim=1)
        return F.scaled_dot_product_attention(qh, kh, vh).transpose(1, 2)

    module = types.ModuleType("flash_attn")
    module.__version__ = "0.0.test"
    module.flash_attn_func = flash_attn_func
    monkeypatch.setitem(sys.modules, "flash_attn", module)
    return calls


def _impls(model: torch.nn.Module) -> set[str]:
    return {m.attn_impl for m in model.modules() if hasattr(m, "attn_impl")}


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(ids)
    return out.logits if hasattr(out, "logits") else out


def _ids(vocab: int, batch: int = 2, length: int = 12) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG and r.levelname == "WARNING"]


# ----------------------------------------------------------------------------------- auto


def test_auto_on_cpu_runs_llada_on_sdpa_with_a_warning(ckpt, no_flash, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=LOG):
        model = load_model(ckpt["llada"], "llada", attn_impl="auto", key="llada_tiny_base")
    assert _impls(model) == {"sdpa"}
    assert model.attention_record == {
        "impl": "sdpa",
        "requested": "auto",
        "paper": "flash",
        "reason": "auto: flash-attn is not installed",
    }
    (warning,) = _warnings(caplog)
    assert "llada_tiny_base" in warning and "the paper ran it on flash-attn" in warning


def test_auto_llada_falls_back_where_flash_attn_cannot_run(fake_flash, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=LOG):
        on_cpu = resolve_attention("llada", "auto", torch.float16, CPU, "m")
        in_fp32 = resolve_attention("llada", "auto", torch.float32, CUDA, "m")
    assert on_cpu["impl"] == in_fp32["impl"] == "sdpa"
    assert "not a CUDA device" in on_cpu["reason"]
    assert "float16 or bfloat16 only, not float32" in in_fp32["reason"]
    assert len(_warnings(caplog)) == 2
    assert fake_flash == []


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_auto_runs_llada_on_flash_attn_where_it_can(fake_flash, caplog, dtype) -> None:
    with caplog.at_level(logging.INFO, logger=LOG):
        rec = resolve_attention("llada", "auto", dtype, CUDA, "llada_8b_base")
    assert rec["impl"] == rec["paper"] == "flash"
    assert rec["flash_attn"]  # the version (the fake's here, the package's on a real machine)
    assert _warnings(caplog) == []


@pytest.mark.parametrize("family", ["dream", "ar"])
def test_auto_runs_dream_and_llama_on_sdpa_as_the_paper(fake_flash, caplog, family) -> None:
    # Even with flash-attn installed on a CUDA device: the paper's Dream and LLaMA3 ran SDPA.
    with caplog.at_level(logging.INFO, logger=LOG):
        rec = resolve_attention(family, "auto", torch.bfloat16, CUDA, "m")
    assert rec == {"impl": "sdpa", "requested": "auto", "paper": "sdpa", "reason": rec["reason"]}
    assert "as the paper" in rec["reason"]
    assert _warnings(caplog) == []


def test_llada_perplexity_ran_sdpa_in_the_paper(fake_flash) -> None:
    # The official PPL script loaded LLaDA without flash_attention (its config.json: false).
    rec = resolve_attention("llada", "auto", torch.bfloat16, CUDA, "m", benchmark="ppl")
    assert rec["impl"] == rec["paper"] == "sdpa"
    assert resolve_attention("llada", "auto", torch.float16, CUDA, benchmark="niah")["impl"] == (
        "flash"
    )


@pytest.mark.parametrize("family", ["llama", "dream"])
def test_loaded_dream_and_llama_name_sdpa(ckpt, no_flash, caplog, family) -> None:
    with caplog.at_level(logging.INFO, logger=LOG):
        model = load_model(ckpt[family], LOADER_FAMILY[family])
    assert model.attention_record["impl"] == "sdpa"
    assert _warnings(caplog) == []
    if family == "llama":  # what transformers set up, in its own words
        assert model.attention_record["transformers"] == "sdpa"
    else:
        assert _impls(model) == {"sdpa"}


def test_sdpa_forces_sdpa(fake_flash, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=LOG):
        rec = resolve_attention("llada", "sdpa", torch.float16, CUDA, "llada_8b_base")
    assert rec["impl"] == "sdpa" and rec["reason"] == "attn_impl: sdpa"
    assert "flash_attn" not in rec
    assert any("llada_8b_base" in w for w in _warnings(caplog))  # not the paper's kernel


# ---------------------------------------------------------------------------------- flash


@pytest.mark.parametrize("family", ["llada", "dream", "llama"])
def test_flash_without_flash_attn_stops_before_reading_anything(
    ckpt, no_flash, monkeypatch, family
) -> None:
    def never(*_args, **_kwargs):
        raise AssertionError("read the checkpoint before refusing attn_impl: flash")

    for name in ("_read_config", "_load_weights", "_load_ar"):
        monkeypatch.setattr(loading, name, never)
    with pytest.raises(AttentionUnavailableError) as err:
        load_model(ckpt[family], LOADER_FAMILY[family], attn_impl="flash", key="my_model")
    message = str(err.value)
    assert "models.my_model.attn_impl is 'flash'" in message
    assert "model my_model" in message and "flash-attn is not installed" in message
    assert "set models.my_model.attn_impl to auto or sdpa" in message


@pytest.mark.parametrize(
    ("dtype", "device", "problem"),
    [
        (torch.float16, CPU, "the model runs on cpu, not a CUDA device"),
        (torch.float32, CUDA, "flash-attn runs in float16 or bfloat16 only, not float32"),
    ],
)
def test_flash_where_flash_attn_cannot_run(fake_flash, dtype, device, problem) -> None:
    with pytest.raises(AttentionUnavailableError, match=r"models\.dream_v0\.attn_impl") as err:
        resolve_attention("dream", "flash", dtype, device, "dream_v0")
    assert problem in str(err.value)


def test_flash_for_dream_is_allowed_and_named_as_not_the_papers(fake_flash, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=LOG):
        rec = resolve_attention("dream", "flash", torch.bfloat16, CUDA, "dream_v0")
    assert (rec["impl"], rec["paper"], rec["reason"]) == ("flash", "sdpa", "attn_impl: flash")
    (warning,) = _warnings(caplog)
    assert "dream_v0" in warning and "the paper ran it on torch SDPA" in warning


def _flash_twin(model: torch.nn.Module) -> torch.nn.Module:
    twin = type(model)(model.config, attn_impl="flash")
    twin.load_state_dict(model.state_dict())
    return twin.eval()


@pytest.mark.parametrize("family", ["llada", "dream", "llada_gqa"])
def test_flash_path_gives_the_sdpa_paths_logits(ckpt, fake_flash, family) -> None:
    if family == "llada_gqa":  # the tiny LLaDA checkpoint has as many kv heads as heads
        config = LLaDAConfig(
            d_model=64,
            n_layers=2,
            n_heads=4,
            n_kv_heads=2,
            mlp_hidden_size=96,
            vocab_size=50,
            rope_theta=10000.0,
            rms_norm_eps=1e-5,
        )
        torch.manual_seed(0)
        sdpa = LLaDAModelLM(config, attn_impl="sdpa").eval()
    else:
        sdpa = load_model(ckpt[family], family, attn_impl="sdpa")
    flash = _flash_twin(sdpa)
    assert _impls(flash) == {"flash"}
    ids = _ids(sdpa.config.vocab_size, batch=2, length=12)
    want = _logits(sdpa, ids)
    assert fake_flash == []
    got = _logits(flash, ids)
    # One call per layer, in flash-attn's [B, L, H, D] (L = 12 differs from H = 4).
    n_layers = getattr(flash.config, "n_layers", None) or flash.config.num_hidden_layers
    assert fake_flash == [(2, 12, 4, 16)] * n_layers
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_load_model_runs_flash_where_it_can(ckpt, fake_flash, monkeypatch) -> None:
    # As on a CUDA machine with flash-attn: "auto" picks it for LLaDA, and the model runs it.
    monkeypatch.setattr(loading, "_flash_problem", lambda dtype, device: (None, ""))
    model = load_model(ckpt["llada"], "llada", key="llada_tiny_base")
    assert model.attention_record["impl"] == "flash"
    assert model.attention_record["flash_attn"]
    assert _impls(model) == {"flash"}
    sdpa = load_model(ckpt["llada"], "llada", attn_impl="sdpa")
    ids = _ids(model.config.vocab_size)
    torch.testing.assert_close(_logits(model, ids), _logits(sdpa, ids), rtol=0, atol=1e-6)
    assert fake_flash


def test_unknown_kernel_is_refused(ckpt) -> None:
    with pytest.raises(ValueError, match="attn_impl must be one of"):
        load_model(ckpt["llada"], "llada", attn_impl="eager")
    with pytest.raises(ValueError, match="attn_impl must be one of"):
        DreamModel(None, attn_impl="auto")  # the classes run a resolved kernel only


# ----------------------------------------------------------------------------- provenance


def _demo_model(family: str, **fields) -> Model:
    seeds = {"llada": 3, "dream": 5, "ar": 1}
    return Model(
        key=f"{family}_tiny_base",
        label=family,
        family=family,
        variant="base",
        t_train=256,
        rope_theta=10000.0,
        head_dim=16,
        dtype="float32",
        demo={"preset": "tiny", "seed": seeds[family]},
        **fields,
    )


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("manifests")
    out = {}
    for family in ("llada", "dream"):
        model = _demo_model(family)
        snapshot = checkpoints.build_demo(model, root / "hub" / model.key)
        out[family] = root / model.key / "download.json"
        checkpoints.materialize(model, snapshot, out[family])
    return out


def test_load_run_model_names_the_kernel_in_provenance(manifests, no_flash) -> None:
    model = _demo_model("llada")
    _net, _tok, prov = load_run_model(model, manifests["llada"])
    attention = prov["model"]["attention"]
    assert attention == prov["attention"]
    assert attention["impl"] == "sdpa" and attention["requested"] == "auto"
    assert prov["model"]["attn_impl"] == "auto"  # the config's entry, as every model field
    rec = json.loads(json.dumps(provenance.record("test", model=prov["model"])))
    assert rec["model"]["attention"]["reason"] == "auto: flash-attn is not installed"


def test_load_run_model_refuses_flash_naming_the_config_key(manifests, no_flash) -> None:
    model = _demo_model("dream", attn_impl="flash")
    with pytest.raises(AttentionUnavailableError, match=r"models\.dream_tiny_base\.attn_impl"):
        load_run_model(model, manifests["dream"])


def test_result_file_names_the_kernel(manifests, no_flash, tmp_path) -> None:
    document = tmp_path / "doc.txt"
    document.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    model = _demo_model("dream", attn_impl="sdpa")
    out = tmp_path / "len32.npz"
    qk_states.run(
        model,
        Run("qk_states", model.key, "dream", 1.0),
        {"length": 32, "stride": 4},
        checkpoint_file=manifests["dream"],
        document=document,
        document_index=0,
        output=out,
        seed=2025,
    )
    prov = json.loads(str(np.load(out)["provenance"]))
    assert prov["model"]["attention"] == {
        "impl": "sdpa",
        "requested": "sdpa",
        "paper": "sdpa",
        "reason": "attn_impl: sdpa",
    }


# --------------------------------------------------------------------- config, fingerprints


@pytest.fixture(scope="module")
def paper_config() -> dict:
    return yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def test_bad_attn_impl_is_rejected_naming_the_key(paper_config) -> None:
    cfg = copy.deepcopy(paper_config)
    key = next(iter(cfg["models"]))
    cfg["models"][key]["attn_impl"] = "eager"
    with pytest.raises(ConfigError, match=rf"models\.{key}\.attn_impl: 'eager' is not one of"):
        Study(cfg)


def test_attn_impl_reaches_the_model(paper_config) -> None:
    cfg = copy.deepcopy(paper_config)
    key = next(k for k, m in cfg["models"].items() if m["family"] == "llada")
    cfg["models"][key]["attn_impl"] = "flash"
    study = Study(cfg)
    assert study.models[key].attn_impl == "flash"
    assert {m.attn_impl for k, m in study.models.items() if k != key} == {"auto"}


def test_attn_impl_changes_the_gpu_jobs_fingerprint_only_when_set(paper_config) -> None:
    study = Study(copy.deepcopy(paper_config))
    run = next(r for r in study.runs.values() if r.family == "llada" and r.benchmark == "niah")
    model = study.models[run.model]
    settings = study.benchmarks["niah"]

    def gpu(m: Model) -> str:
        return fingerprints.canonical(fingerprints.compute(m, run, settings, study.seed))

    auto = gpu(model)
    assert "attn_impl" not in auto  # results made before the key existed are not rerun
    assert gpu(dataclasses.replace(model, attn_impl="sdpa")) != auto
    assert gpu(dataclasses.replace(model, attn_impl="flash")) != gpu(
        dataclasses.replace(model, attn_impl="sdpa")
    )
    # The checkpoint does not depend on the kernel.
    flash = dataclasses.replace(model, attn_impl="flash")
    assert fingerprints.download(flash) == fingerprints.download(model)
    assert fingerprints.demo_checkpoint(flash) == fingerprints.demo_checkpoint(model)
