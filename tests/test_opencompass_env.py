"""The OpenCompass environment (.venv-opencompass, made by ./quickstart.sh): importable, numpy<2,
cl100k_base offline, no credentials handed to it.

./quickstart.sh exports LONGLLADA_OPENCOMPASS_PYTHON; without it (a bare `pytest` in a checkout
that never ran quickstart) these tests are skipped, never passed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from longllada import opencompass_env

PYTHON = os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON")
needs_env = pytest.mark.skipif(not PYTHON, reason="LONGLLADA_OPENCOMPASS_PYTHON is not set")


def test_cache_key_is_tiktokens_name_for_the_download() -> None:
    # tiktoken caches a blob under the sha1 of its URL (BENCHMARKS.md, install facts).
    assert opencompass_env.cache_key() == "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"


def test_missing_interpreter_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(opencompass_env.OpenCompassEnvError, match="quickstart.sh test"):
        opencompass_env.prepare(str(tmp_path / "nope" / "python"))


@pytest.fixture(scope="module")
def prepared() -> dict:
    return opencompass_env.prepare(PYTHON)


def _run(prepared: dict, code: str) -> dict:
    res = subprocess.run(
        [prepared["python"], "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=opencompass_env.environment(prepared),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@needs_env
def test_pinned_versions(prepared: dict) -> None:
    v = prepared["versions"]
    assert v["opencompass"] == "0.5.4" and v["wonderwords"] == "2.2.0"
    assert int(v["numpy"].split(".")[0]) < 2  # the pin that keeps it out of the driver env
    assert prepared["cl100k_sha256"] == opencompass_env.CL100K_SHA256
    cached = Path(prepared["tiktoken_cache_dir"]) / opencompass_env.cache_key()
    assert cached.is_file()


@needs_env
def test_cl100k_offline_and_opencompass_imports(prepared: dict, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_the_test")
    out = _run(
        prepared,
        "import json, os, tiktoken\n"
        "from opencompass.datasets.needlebench.origin import NeedleBenchOriginEvaluator\n"
        "enc = tiktoken.encoding_for_model('gpt-4')\n"
        "print(json.dumps({'name': enc.name, 'ids': enc.encode('The best thing to do in San "
        "Francisco is'), 'token': 'HF_TOKEN' in os.environ}))",
    )
    assert out["name"] == "cl100k_base"
    assert len(out["ids"]) == 9  # the NeedleBench question's answer prefix, in cl100k tokens
    assert out["token"] is False


SRC = Path(__file__).resolve().parents[1] / "src"


@needs_env
def test_rule_modules_import_in_the_opencompass_env_from_src(prepared: dict) -> None:
    """With conda, the prompts and score rules run in the OpenCompass env itself, which does
    not install this package: what they import must come from src/ with its stdlib alone, and
    the env must find itself as the OpenCompass interpreter."""
    code = (
        f"import sys, json; sys.path.insert(0, {str(SRC)!r}); "
        "import longllada.benchmarks.niah, longllada.opencompass_env as oc, longllada.snakejob; "
        "heavy = [m for m in ('torch', 'transformers', 'jsonschema') if m in sys.modules]; "
        "print(json.dumps({'heavy': heavy, 'python': oc.interpreter(), 'exe': sys.executable}))"
    )
    out = _run(prepared, code)
    assert out["heavy"] == []
    assert out["python"] == out["exe"]  # it has OpenCompass: it is the interpreter to use


def test_the_driver_env_hands_over_to_the_opencompass_interpreter(monkeypatch) -> None:
    monkeypatch.setenv("LONGLLADA_OPENCOMPASS_PYTHON", "/opt/oc/bin/python")
    assert opencompass_env.interpreter() == "/opt/oc/bin/python"
    monkeypatch.delenv("LONGLLADA_OPENCOMPASS_PYTHON")
    assert opencompass_env.interpreter() == opencompass_env.DEFAULT_PYTHON


@needs_env
def test_the_colormap_is_opencompass_needlebench_summarizers(prepared: dict) -> None:
    """The heatmaps' colours are read from OpenCompass's NeedleBench summarizer, not invented."""
    from longllada.figures import niah_figs

    code = (
        "import inspect, json, re; import opencompass.summarizers.needlebench as m; "
        "src = inspect.getsource(m.visualize); "
        "print(json.dumps(re.findall(r\"'(#[0-9A-Fa-f]{6})'\", src)))"
    )
    theirs = _run(prepared, code)
    assert theirs and list(niah_figs.NEEDLEBENCH_COLORS) == theirs


@pytest.mark.parametrize("value", [7, None, ["x"]])
def test_a_prediction_that_is_not_a_string_is_named_before_the_hand_over(value: object) -> None:
    """A non-string prediction never reaches OpenCompass's scorer (whose failure named neither
    file nor sample): the hand-over names the sample."""
    rows = [
        {"id": "a", "prediction": "fine", "gold": "g", "keyword": "k"},
        {"id": "b", "prediction": value, "gold": "g", "keyword": "k"},
    ]
    no_env = {"python": "/nonexistent", "versions": {}, "cl100k_sha256": ""}
    with pytest.raises(ValueError, match=r"NIAH scoring: sample b: the prediction is .*not a"):
        opencompass_env.score_rows(
            no_env, "niah_score.py", rows, ("id", "prediction", "gold", "keyword"), "NIAH"
        )
