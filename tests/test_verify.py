"""The `verify` equivalence check, against tiny reference modules written here.

The hub's modeling files are never copied into this repository. Instead each test checkpoint (a
tiny demo LLaDA or Dream) gets a small modeling + configuration file written below from
MODELS.md alone, in a deliberately different style from longllada.models (explicit softmax
attention, per-head loops, RoPE from cos/sin of the two halves), registered through config.json's
auto_map exactly as the hub code is. The reference side then loads it with trust_remote_code in
the hub-code environment (`.venv-hubcode`, transformers 4.46.3, made by ./quickstart.sh) and,
where it works, in this environment too (transformers 5): the modules load with both.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from longllada import verify
from longllada.config import Model
from longllada.demo import PRESETS, build_demo_checkpoint
from longllada.files import read_json, write_json

REPO = Path(__file__).resolve().parents[1]
HUBCODE_ENV_VAR = "LONGLLADA_HUBCODE_PYTHON"
TIGHT = {"max_abs_diff": 1e-4, "min_argmax_agreement": 1.0}


def hubcode_python() -> str | None:
    """The hub-code environment's interpreter: $LONGLLADA_HUBCODE_PYTHON, else the repository's
    .venv-hubcode (./quickstart.sh creates it); None when neither exists."""
    given = os.environ.get(HUBCODE_ENV_VAR)
    if given:
        return given
    local = REPO / ".venv-hubcode" / "bin" / "python"
    return str(local) if local.exists() else None


NO_HUBCODE = (
    f"no hub-code environment: run ./quickstart.sh test (creates .venv-hubcode from "
    f"envs/hubcode-requirements.txt) or set {HUBCODE_ENV_VAR}"
)
# The reference side in both environments: the pinned one (the paper's transformers) when it
# exists, and this one (transformers 5), which needs no setup.
PYTHONS = [
    pytest.param("hubcode", id="hubcode"),
    pytest.param("main", id="main-env"),
]


def python_for(which: str) -> str:
    if which == "main":
        return sys.executable
    found = hubcode_python()
    if found is None:
        pytest.skip(NO_HUBCODE)
    return found


# --------------------------------------------------------------------- tiny reference modules

# The faults a test can switch on in a reference module (never in longllada): "theta" doubles
# the RoPE base, "causal" masks the future, "none" is the faithful module.
FAULT_TOKEN = "__FAULT__"

LLADA_CONFIGURATION = """
from transformers import PretrainedConfig


class RefLLaDAConfig(PretrainedConfig):
    model_type = "llada"

    def __init__(self, d_model=64, n_layers=2, n_heads=4, n_kv_heads=None,
                 mlp_hidden_size=128, vocab_size=512, embedding_size=None,
                 rope_theta=10000.0, rms_norm_eps=1e-5, mask_token_id=None, **kwargs):
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads or n_heads
        self.mlp_hidden_size = mlp_hidden_size
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.mask_token_id = mask_token_id
        kwargs["tie_word_embeddings"] = False
        super().__init__(**kwargs)
"""

# Shared by both reference models: fp32 RMSNorm (normalise, cast back, then scale), RoPE over
# the two halves of each head, explicit softmax attention (no mask unless the fault says so).
COMMON = """
import torch
import yaml
from torch import nn

FAULT = "__FAULT__"


class RefNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        h = x.to(torch.float32)
        h = h / torch.sqrt((h * h).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def cos_sin(length, head_dim, theta, device):
    if FAULT == "theta":
        theta = 2 * theta
    half = head_dim // 2
    j = torch.arange(half, dtype=torch.float32, device=device)
    freq = 1.0 / torch.pow(torch.tensor(float(theta), device=device), 2.0 * j / head_dim)
    angle = torch.arange(length, dtype=torch.float32, device=device)[:, None] * freq[None, :]
    return angle.cos(), angle.sin()


def rotate(t, cos, sin):
    half = t.shape[-1] // 2
    first, second = t[..., :half], t[..., half:]
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)


def attend(q, k, v):
    # q [Hq, L, D]; k, v [Hkv, L, D]: query head h reads kv head h // (Hq / Hkv).
    group = q.shape[0] // k.shape[0]
    outs = []
    for h in range(q.shape[0]):
        kh, vh = k[h // group], v[h // group]
        scores = (q[h].float() @ kh.float().T) / (q.shape[-1] ** 0.5)
        if FAULT == "causal":
            future = torch.ones_like(scores, dtype=torch.bool).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        outs.append((scores.softmax(dim=-1) @ vh.float()).to(q.dtype))
    return torch.stack(outs)
"""

LLADA_MODELING = (
    """
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_ref_llada import RefLLaDAConfig
"""
    + COMMON
    + """

class RefBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        hd = c.d_model // c.n_heads
        self.attn_norm = RefNorm(c.d_model, c.rms_norm_eps)
        self.q_proj = nn.Linear(c.d_model, c.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(c.d_model, c.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(c.d_model, c.n_kv_heads * hd, bias=False)
        self.attn_out = nn.Linear(c.n_heads * hd, c.d_model, bias=False)
        self.ff_norm = RefNorm(c.d_model, c.rms_norm_eps)
        self.ff_proj = nn.Linear(c.d_model, c.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(c.d_model, c.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(c.mlp_hidden_size, c.d_model, bias=False)
        self.heads, self.kv_heads, self.hd, self.theta = c.n_heads, c.n_kv_heads, hd, c.rope_theta

    def forward(self, x):  # x [L, d] (batch of one)
        length = x.shape[0]
        h = self.attn_norm(x)
        q = self.q_proj(h).view(length, self.heads, self.hd).transpose(0, 1)
        k = self.k_proj(h).view(length, self.kv_heads, self.hd).transpose(0, 1)
        v = self.v_proj(h).view(length, self.kv_heads, self.hd).transpose(0, 1)
        cos, sin = cos_sin(length, self.hd, self.theta, x.device)
        q = rotate(q.float(), cos, sin).to(x.dtype)
        k = rotate(k.float(), cos, sin).to(x.dtype)
        y = attend(q, k, v).transpose(0, 1).reshape(length, -1)
        x = x + self.attn_out(y)
        h = self.ff_norm(x)
        return x + self.ff_out(nn.functional.silu(self.ff_proj(h)) * self.up_proj(h))


class RefLLaDAModelLM(PreTrainedModel):
    config_class = RefLLaDAConfig
    base_model_prefix = "model"

    def __init__(self, config):
        super().__init__(config)
        vocab = config.embedding_size or config.vocab_size
        self.model = nn.Module()
        self.model.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab, config.d_model),
                "blocks": nn.ModuleList(RefBlock(config) for _ in range(config.n_layers)),
                "ln_f": RefNorm(config.d_model, config.rms_norm_eps),
                "ff_out": nn.Linear(config.d_model, vocab, bias=False),
            }
        )
        self.post_init()

    def _init_weights(self, module):
        pass  # every weight comes from the checkpoint

    def forward(self, input_ids, attention_mask=None, **kwargs):
        t = self.model.transformer
        rows = []
        for ids in input_ids:
            x = t["wte"](ids)
            for block in t["blocks"]:
                x = block(x)
            rows.append(t["ff_out"](t["ln_f"](x)))
        return CausalLMOutputWithPast(logits=torch.stack(rows))
"""
)

DREAM_CONFIGURATION = """
from transformers import PretrainedConfig


class RefDreamConfig(PretrainedConfig):
    model_type = "Dream"

    def __init__(self, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=None, intermediate_size=128, vocab_size=512,
                 rope_theta=10000.0, rms_norm_eps=1e-6, mask_token_id=None, **kwargs):
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.intermediate_size = intermediate_size
        self.vocab_size = vocab_size
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.mask_token_id = mask_token_id
        kwargs["tie_word_embeddings"] = False
        super().__init__(**kwargs)
"""

DREAM_MODELING = (
    """
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_ref_dream import RefDreamConfig
"""
    + COMMON
    + """

class RefAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        hd = c.hidden_size // c.num_attention_heads
        self.q_proj = nn.Linear(c.hidden_size, c.num_attention_heads * hd, bias=True)
        self.k_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * hd, bias=True)
        self.v_proj = nn.Linear(c.hidden_size, c.num_key_value_heads * hd, bias=True)
        self.o_proj = nn.Linear(c.num_attention_heads * hd, c.hidden_size, bias=False)
        self.heads, self.kv_heads, self.hd = c.num_attention_heads, c.num_key_value_heads, hd
        self.theta = c.rope_theta

    def forward(self, x):  # x [L, d]
        length = x.shape[0]
        q = self.q_proj(x).view(length, self.heads, self.hd).transpose(0, 1)
        k = self.k_proj(x).view(length, self.kv_heads, self.hd).transpose(0, 1)
        v = self.v_proj(x).view(length, self.kv_heads, self.hd).transpose(0, 1)
        cos, sin = cos_sin(length, self.hd, self.theta, x.device)
        # Dream rotates in the model dtype (cos/sin cast down), unlike LLaDA.
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        y = attend(rotate(q, cos, sin), rotate(k, cos, sin), v)
        return self.o_proj(y.transpose(0, 1).reshape(length, -1))


class RefMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class RefLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RefNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = RefAttention(c)
        self.post_attention_layernorm = RefNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = RefMLP(c)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class RefDreamModel(PreTrainedModel):
    config_class = RefDreamConfig
    base_model_prefix = "model"

    def __init__(self, config):
        super().__init__(config)
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.model.layers = nn.ModuleList(RefLayer(config) for _ in range(config.num_hidden_layers))
        self.model.norm = RefNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module):
        pass  # every weight comes from the checkpoint

    def forward(self, input_ids, attention_mask=None, **kwargs):
        rows = []
        for ids in input_ids:
            x = self.model.embed_tokens(ids)
            for layer in self.model.layers:
                x = layer(x)
            rows.append(self.lm_head(self.model.norm(x)))
        return MaskedLMOutput(logits=torch.stack(rows))
"""
)

REFERENCES = {
    "llada": {
        "configuration_ref_llada": LLADA_CONFIGURATION,
        "modeling_ref_llada": LLADA_MODELING,
        "auto_map": {
            "AutoConfig": "configuration_ref_llada.RefLLaDAConfig",
            "AutoModel": "modeling_ref_llada.RefLLaDAModelLM",
        },
    },
    "dream": {
        "configuration_ref_dream": DREAM_CONFIGURATION,
        "modeling_ref_dream": DREAM_MODELING,
        "auto_map": {
            "AutoConfig": "configuration_ref_dream.RefDreamConfig",
            "AutoModel": "modeling_ref_dream.RefDreamModel",
        },
    },
}


def add_reference(model_dir: Path, family: str, fault: str = "none") -> Path:
    """Write the tiny reference code into `model_dir` and point config.json's auto_map at it."""
    spec = REFERENCES[family]
    for name, text in spec.items():
        if name != "auto_map":
            (model_dir / f"{name}.py").write_text(text.replace(FAULT_TOKEN, fault))
    config = read_json(model_dir / "config.json")
    config["auto_map"] = spec["auto_map"]
    write_json(model_dir / "config.json", config)
    return model_dir


# ------------------------------------------------------------------------------------ fixtures


def model_entry(family: str, key: str | None = None) -> Model:
    sizes = PRESETS["tiny"][family]
    return Model(
        key=key or f"tiny_{family}",
        label=f"tiny {family}",
        family=family,
        variant="base",
        t_train=sizes["max_position"],
        rope_theta=10000.0,
        head_dim=sizes["hidden"] // sizes["heads"],
        dtype="float32",
        demo={"preset": "tiny", "seed": 0},
    )


def make_checkpoint(root: Path, family: str, fault: str = "none") -> tuple[Model, Path]:
    """A tiny demo checkpoint + reference code + the download.json the rule reads."""
    model = model_entry(family)
    snapshot = build_demo_checkpoint(
        family, root / "hub", seed=0, rope_theta=model.rope_theta, **PRESETS["tiny"][family]
    )
    add_reference(snapshot, family, fault)
    manifest = root / "ckpt" / model.key / "download.json"
    write_json(manifest, {"snapshot_dir": str(snapshot), "model_key": model.key})
    return model, manifest


@pytest.fixture(scope="module")
def llada(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Path]:
    return make_checkpoint(tmp_path_factory.mktemp("llada"), "llada")


@pytest.fixture(scope="module")
def dream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Model, Path]:
    return make_checkpoint(tmp_path_factory.mktemp("dream"), "dream")


def out_file(manifest: Path) -> Path:
    return manifest.parent / "verify.json"


# ------------------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("which", PYTHONS)
def test_llada_passes(llada: tuple[Model, Path], which: str) -> None:
    model, manifest = llada
    python = python_for(which)
    verdict = verify.run_verify(model, manifest, python, out_file(manifest), device="cpu", **TIGHT)
    assert verdict["passed"] is True
    assert read_json(out_file(manifest)) == verdict
    assert not verify.failed_path(out_file(manifest)).exists()
    cmp = verdict["comparison"]
    assert cmp["max_abs_diff"] < 1e-5 and cmp["argmax_agreement"] == 1.0
    assert cmp["shape"] == [2, 64, verdict["inputs"]["vocab_size"]]
    ref = verdict["reference"]
    assert ref["model_class"] == "RefLLaDAModelLM"
    assert ref["model_module"].startswith("transformers_modules.")  # loaded as remote code
    if which == "hubcode":
        assert ref["transformers_version"] == verify.PAPER_TRANSFORMERS
        assert ref["is_paper_version"] is True
    assert verdict["native"]["model_class"] == "LLaDAModelLM"
    assert verdict["thresholds"] == TIGHT
    assert verdict["provenance"]["stage"] == "verify"
    assert verdict["provenance"]["model"]["key"] == model.key


def test_dream_passes(dream: tuple[Model, Path]) -> None:
    # The reference side in the pinned environment, or in this one when that is absent (the
    # environment itself is covered by test_llada_passes).
    model, manifest = dream
    python = hubcode_python() or sys.executable
    verdict = verify.run_verify(model, manifest, python, out_file(manifest), device="cpu", **TIGHT)
    assert verdict["passed"] is True
    assert verdict["reference"]["model_class"] == "RefDreamModel"
    assert verdict["native"]["model_class"] == "DreamModel"
    assert verdict["inputs"]["mask_token_id"] is not None


def test_ar_passes(tmp_path: Path) -> None:
    # LLaMA goes through transformers on both sides (no remote code). The demo config is written
    # by transformers 5 (rope_theta only under rope_parameters), which transformers 4.46.3 does
    # not read: a base other than its default 1e4 shows that the reference carries it over.
    sizes = PRESETS["tiny"]["llama"]
    model = dataclasses.replace(model_entry("dream"), key="tiny_llama", family="ar")
    model = dataclasses.replace(model, rope_theta=500000.0, t_train=sizes["max_position"])
    snapshot = build_demo_checkpoint("llama", tmp_path / "hub", rope_theta=5e5, **sizes)
    manifest = tmp_path / "ckpt" / "download.json"
    write_json(manifest, {"snapshot_dir": str(snapshot)})
    python = hubcode_python() or sys.executable
    verdict = verify.run_verify(model, manifest, python, out_file(manifest), device="cpu", **TIGHT)
    assert verdict["passed"] is True
    assert verdict["reference"]["model_class"] == "LlamaForCausalLM"
    assert verdict["inputs"]["mask_token_id"] is None


@pytest.mark.parametrize("fault", ["theta", "causal"])
def test_wrong_reference_fails(tmp_path: Path, fault: str) -> None:
    python = hubcode_python() or sys.executable
    model, manifest = make_checkpoint(tmp_path, "llada", fault=fault)
    out = out_file(manifest)
    out.write_text("{}")  # a stale pass must not survive a failing run
    with pytest.raises(verify.VerifyError, match="does not match the checkpoint's hub code"):
        verify.run_verify(model, manifest, python, out, device="cpu", **TIGHT)
    assert not out.exists()
    failed = read_json(verify.failed_path(out))
    assert failed["passed"] is False
    assert failed["comparison"]["passed"] is False
    # The faithful module is within 1e-6 (test_llada_passes); these are orders of magnitude off.
    assert failed["comparison"]["max_abs_diff"] > 10 * TIGHT["max_abs_diff"]
    assert failed["thresholds"] == TIGHT


def test_reference_failure_names_the_env(tmp_path: Path) -> None:
    python = hubcode_python() or sys.executable
    model, manifest = make_checkpoint(tmp_path, "llada")
    (Path(read_json(manifest)["snapshot_dir"]) / "modeling_ref_llada.py").unlink()
    with pytest.raises(verify.VerifyError) as err:
        verify.run_verify(model, manifest, python, out_file(manifest), device="cpu")
    message = str(err.value)
    assert "hub-code environment" in message and python in message
    assert "transformers" in message  # the env's versions
    assert "modeling_ref_llada.py" in message  # the reason, from the reference script
    assert not out_file(manifest).exists()


def test_reference_failure_in_hub_code(tmp_path: Path) -> None:
    python = hubcode_python() or sys.executable
    model, manifest = make_checkpoint(tmp_path, "llada")
    modeling = Path(read_json(manifest)["snapshot_dir"]) / "modeling_ref_llada.py"
    modeling.write_text(modeling.read_text() + "\nraise RuntimeError('hub code is broken')\n")
    with pytest.raises(verify.VerifyError, match="hub code is broken"):
        verify.run_verify(model, manifest, python, out_file(manifest), device="cpu")


SECRETS = {
    "HF_TOKEN": "hf_secretTokenForTheTest123",
    "HUGGING_FACE_HUB_TOKEN": "hf_legacySecretToken456",
    "GITHUB_TOKEN": "ghp_anotherSecret789",
    "HF_TOKEN_PATH": "/somewhere/token",
    "HF_STORED_TOKENS_PATH": "/somewhere/stored_tokens",
}


def _assert_no_secrets(env: dict[str, str]) -> None:
    assert not [k for k in env if k.upper().endswith("_TOKEN")]
    assert not set(SECRETS) & set(env)
    assert not [v for v in env.values() if any(s in v for s in SECRETS.values())]


def test_hub_code_gets_no_tokens(
    llada: tuple[Model, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every subprocess the rule starts with the hub-code interpreter gets a scrubbed env.
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LONGLLADA_HARMLESS", "kept")
    seen: list[dict[str, str]] = []

    def fake_run(cmd, **kwargs):  # noqa: ANN001, ANN202
        env = kwargs.get("env")
        seen.append(dict(os.environ) if env is None else env)
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="verify_reference: no\n")

    monkeypatch.setattr(verify.subprocess, "run", fake_run)
    model, manifest = llada
    with pytest.raises(verify.VerifyError):
        verify.run_verify(model, manifest, sys.executable, tmp_path / "v.json", device="cpu")
    assert len(seen) == 2  # the reference run, then the version query for the message
    for env in seen:
        _assert_no_secrets(env)
        assert env["LONGLLADA_HARMLESS"] == "kept"
    assert seen[0]["HF_HUB_OFFLINE"] == "1"


def test_hub_code_sees_no_tokens_in_its_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The downloaded code itself dumps os.environ: no token reaches it.
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    model, manifest = make_checkpoint(tmp_path, "llada")
    snapshot = Path(read_json(manifest)["snapshot_dir"])
    dump = tmp_path / "environ.json"
    modeling = snapshot / "modeling_ref_llada.py"
    modeling.write_text(
        "import json as _json, os as _os\n"
        f"_json.dump(dict(_os.environ), open({str(dump)!r}, 'w'))\n" + modeling.read_text()
    )
    verify.run_verify(model, manifest, sys.executable, out_file(manifest), device="cpu")
    env = json.loads(dump.read_text())
    _assert_no_secrets(env)
    assert env["HF_HUB_OFFLINE"] == "1"


def test_missing_env_says_how_to_create_it(llada: tuple[Model, Path], tmp_path: Path) -> None:
    model, manifest = llada
    with pytest.raises(verify.VerifyError, match="quickstart.sh") as err:
        verify.run_verify(model, manifest, str(tmp_path / "nope/bin/python"), tmp_path / "v.json")
    assert "nope/bin/python" in str(err.value)


# ----------------------------------------------------------------------- the reference script


def test_reference_script_bad_dir(tmp_path: Path) -> None:
    ids = tmp_path / "in.pt"
    torch.save(torch.zeros(1, 4, dtype=torch.int64), ids)
    res = subprocess.run(
        [sys.executable, str(verify.REFERENCE_SCRIPT), "--model-dir", str(tmp_path / "absent")]
        + ["--family", "llada", "--inputs", str(ids), "--out", str(tmp_path / "out.pt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("verify_reference: model directory")
    assert not (tmp_path / "out.pt").exists()


def test_reference_script_imports_only_its_env() -> None:
    # It runs in the hub-code environment, where longllada is not installed.
    tree = ast.parse(verify.REFERENCE_SCRIPT.read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    top = {m.split(".")[0] for m in modules}
    assert top <= set(sys.stdlib_module_names) | {"torch", "transformers", "__future__"}


# ---------------------------------------------------------------------------- inputs, compare


def test_make_inputs() -> None:
    ids = verify.make_inputs(1000, 999, n_seqs=3, length=200, seed=1)
    assert ids.shape == (3, 200) and ids.dtype == torch.int64
    assert int(ids.min()) >= 0 and int(ids.max()) < 1000
    frac = float((ids == 999).double().mean())
    assert 0.2 < frac < 0.4
    assert torch.equal(ids, verify.make_inputs(1000, 999, n_seqs=3, length=200, seed=1))
    assert not torch.equal(ids, verify.make_inputs(1000, 999, n_seqs=3, length=200, seed=2))
    causal = verify.make_inputs(1000, None, n_seqs=3, length=200, seed=1)
    assert float((causal == 999).double().mean()) < 0.01


def test_compare_identical_passes() -> None:
    x = torch.randn(2, 5, 11)
    out = verify.compare(x, x.clone(), 1e-6, 1.0)
    assert out["passed"] is True
    assert out["max_abs_diff"] == 0.0 and out["mean_abs_diff"] == 0.0
    assert out["argmax_agreement"] == 1.0 and out["nonfinite"] == 0
    assert len(out["per_sequence"]) == 2


def test_compare_small_noise_within_limit() -> None:
    x = torch.randn(2, 5, 11)
    out = verify.compare(x, x + 1e-5, 1e-3, 0.9)
    assert out["passed"] is True
    assert out["max_abs_diff"] == pytest.approx(1e-5, rel=0.1)


def test_compare_max_abs_diff_over_limit() -> None:
    x = torch.randn(2, 5, 11)
    y = x.clone()
    y[1, 2, 3] += 0.5
    out = verify.compare(x, y, 1e-3, 0.0)
    assert out["passed"] is False
    assert out["max_abs_diff"] == pytest.approx(0.5)
    assert out["per_sequence"][0]["max_abs_diff"] == 0.0


def test_compare_argmax_disagreement() -> None:
    x = torch.zeros(1, 4, 3)
    x[..., 0] = 1.0
    y = x.clone()
    y[0, 0] = torch.tensor([0.0, 1.0, 0.0])  # one row of four now picks another token
    out = verify.compare(x, y, 10.0, 0.8)
    assert out["argmax_agreement"] == 0.75 and out["passed"] is False
    assert verify.compare(x, y, 10.0, 0.75)["passed"] is True


def test_compare_nan_and_shape() -> None:
    x = torch.randn(1, 3, 4)
    y = x.clone()
    y[0, 0, 0] = float("nan")
    out = verify.compare(x, y, 1.0, 0.0)
    assert out["passed"] is False and out["nonfinite"] == 1 and "non-finite" in out["problem"]
    json.dumps(out, allow_nan=False)  # the verdict stays valid JSON
    bad = verify.compare(x, torch.randn(1, 3, 5), 1.0, 0.0)
    assert bad["passed"] is False and "shape mismatch" in bad["problem"]


def test_settings_defaults_and_overrides() -> None:
    assert verify.settings(None) == verify.DEFAULTS
    got = verify.settings({"required": True, "max_abs_diff": 0.01, "python": "py"})
    assert got["max_abs_diff"] == 0.01 and got["python"] == "py" and "required" not in got
    with pytest.raises(ValueError, match="unknown verify setting"):
        verify.settings({"tolerance": 1})


def test_schema_knows_every_setting() -> None:
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    keys = set(schema["properties"]["verify"]["properties"])
    assert keys == set(verify.DEFAULTS) | {"required"}


# ------------------------------------------------------------------ the gate in the workflow

# The rules of the jobs that run a model on a GPU (verify itself aside).
GPU_RULES = {
    "perplexity_diffusion",
    "perplexity_causal",
    "qk_states",
    "niah_generate",
    "ruler_generate",
    "longbench_generate",
}


def _snakemake(workdir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """The repository's workflow run in `workdir` (paths in the config are relative to it)."""
    from repo_copy import SNAKEMAKE, fast_env

    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "1", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=fast_env(workdir),
    )


def _planned(output: str) -> list[dict]:
    """The jobs a dry run prints: rule, inputs and wildcards of each."""
    jobs = []
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", output, flags=re.M):
        head = re.match(r"(?:local)?rule (\w+):$", block, re.M)
        if head is None:
            continue
        fields = dict(re.findall(r"^ {4}(\w+): (.*)$", block, re.M))
        wildcards = fields.get("wildcards", "")
        jobs.append(
            {
                "rule": head[1],
                "input": [f for f in fields.get("input", "").split(", ") if f],
                "wildcards": dict(kv.split("=", 1) for kv in wildcards.split(", ") if kv),
            }
        )
    return jobs


def _gpu_targets(study) -> list[str]:
    """One first output of each GPU rule per benchmark and family of the paper's runs."""
    from longllada.config import GENERATIVE

    chosen: dict[tuple[str, str], str] = {}
    for run in study.paper_runs():
        files = (
            study.prediction_files(run) if run.benchmark in GENERATIVE else study.result_files(run)
        )
        chosen.setdefault((run.benchmark, study.models[run.model].family), files[0])
    return sorted(chosen.values())


@pytest.mark.parametrize("required", ["paper", "off", "all"])
def test_paper_gpu_jobs_wait_for_their_models_verify(tmp_path: Path, required: str) -> None:
    """The paper config: every GPU job of a LLaDA or Dream model lists its model's verify.json
    among its inputs, LLaMA3's do not; `verify.required: []` (the documented switch, here from
    the command line) or `true` (every family) change exactly that."""
    from longllada.config import Study

    paper = REPO / "config/paper.yaml"
    assert yaml.safe_load(paper.read_text())["verify"] == {"required": ["llada", "dream"]}
    study = Study.from_file(paper)
    targets = _gpu_targets(study)
    families = {m.family for m in study.models.values()}
    args = ["-n", *targets, "--configfile"]
    if required == "paper":
        args += [str(paper)]
        gated = {"llada", "dream"}
    elif required == "off":
        args += [str(paper), "--config", "verify={required: []}"]
        gated = set()
    else:
        everything = yaml.safe_load(paper.read_text())
        everything["verify"] = {"required": True}
        (tmp_path / "all.yaml").write_text(yaml.safe_dump(everything))
        args += [str(tmp_path / "all.yaml")]
        gated = families
    out = _snakemake(tmp_path, *args)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = _planned(out.stdout + out.stderr)

    gpu_jobs = [j for j in jobs if j["rule"] in GPU_RULES]
    assert {j["rule"] for j in gpu_jobs} == GPU_RULES  # every GPU rule is in the plan
    seen = set()
    for job in gpu_jobs:
        model = job["wildcards"]["model"]
        family = study.models[model].family
        seen.add(family)
        verified = [f for f in job["input"] if f.endswith("/verify.json")]
        expected = [f"{study.checkpoint_dir}/{model}/verify.json"] if family in gated else []
        assert verified == expected, (job, required)
    assert seen == families
    verify_jobs = {j["wildcards"]["model"] for j in jobs if j["rule"] == "verify"}
    assert verify_jobs == {j["wildcards"]["model"] for j in gpu_jobs} & {
        k for k, m in study.models.items() if m.family in gated
    }


def test_a_verify_string_is_refused(tmp_path: Path) -> None:
    """`--config verify={required: false}` hands the schema a string: a clear refusal, never a
    silently gated or ungated run."""
    out = _snakemake(
        tmp_path, "-n", "--configfile", str(REPO / "config/paper.yaml"),
        "--config", "verify={required: false}",
    )  # fmt: skip
    assert out.returncode != 0
    assert "verify.required" in out.stdout + out.stderr


@pytest.mark.slow
def test_a_failing_verify_stops_the_models_gpu_jobs(tmp_path: Path) -> None:
    """A real run of the paper's workflow where llada_8b_base's check fails (a tiny checkpoint
    whose hub code masks the future): the verify job fails and leaves no verify.json, and the
    NIAH job waiting for it never starts, even with --keep-going."""
    snapshot = build_demo_checkpoint(
        "llada", tmp_path / "hub", seed=0, rope_theta=500000.0, **PRESETS["tiny"]["llada"]
    )
    add_reference(snapshot, "llada", "causal")
    work = tmp_path / "work"
    ckpt = work / "results/checkpoints/llada_8b_base"
    write_json(ckpt / "download.json", {"snapshot_dir": str(snapshot)})
    write_json(ckpt / "download.provenance.json", {})
    # What the NIAH job reads besides the checkpoint, older than nothing it depends on.
    write_json(work / "results/data/needlebench/manifest.json", {})
    write_json(work / "results/prompts/niah/len2000.meta.json", {})
    (work / "results/prompts/niah/len2000.jsonl").write_text("{}\n")
    config = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    config["verify"] |= {"python": sys.executable, "timeout_minutes": 5}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/niah/llada_8b_base/ntk1_s32_b32/len2000.predictions.jsonl"

    out = _snakemake(work, target, "--keep-going", "--configfile", "config.yaml")
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert re.search(r"^verify\s+1$", text, re.M) and re.search(r"^niah_generate\s+1$", text, re.M)
    assert "Error in rule verify" in text
    assert not (ckpt / "verify.json").exists()
    assert read_json(ckpt / "verify.failed.json")["passed"] is False
    log = (work / "logs/verify/llada_8b_base.log").read_text()
    assert "does not match the checkpoint's hub code" in log
    assert not (work / target).exists()
    assert not (work / "logs/niah/llada_8b_base").exists()  # the job never started
    assert "rule niah_generate:" not in text.split("Error in rule verify", 1)[1]
