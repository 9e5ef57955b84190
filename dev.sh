#!/usr/bin/env bash
# nonlin_explorer's one entry point: sets everything up (idempotent), then runs what you ask for.
#   ./dev.sh lab     set up, then open JupyterLab on notebooks/quickstart.ipynb   (the main job)
#   ./dev.sh test    set up, then run the whole test suite (what CI runs)
#   ./dev.sh setup   set up only
# GPU users: install a CUDA build of torch into .venv first (or let setup do it: it installs the default
# PyPI torch when `nvidia-smi` is present); setup keeps any torch that is already installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
TORCH_CPU_VERSION=2.13.0

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

setup_python() {
  if [ ! -x "$PY" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$PY" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
      log "NVIDIA GPU found: installing a CUDA build of torch"
      "$PY" -m pip install -q "torch>=2.4,<2.15"
    else
      log "no NVIDIA GPU: installing the CPU build torch==$TORCH_CPU_VERSION"
      "$PY" -m pip install -q "torch==$TORCH_CPU_VERSION"
    fi
  fi
  # Reinstall the package only when its declared inputs changed.
  local stamp want
  want=$(cat pyproject.toml js/package.json 2>/dev/null | sha256sum | cut -c1-16)
  stamp=$(cat "$VENV/.nonlin_stamp" 2>/dev/null || true)
  if [ "$want" != "$stamp" ] || ! "$PY" -c "import nonlin_explorer" 2>/dev/null; then
    log "installing nonlin_explorer (editable) with its test extras"
    "$PY" -m pip install -q -e ".[test]"
    echo "$want" > "$VENV/.nonlin_stamp"
  fi
}

setup_frontend() {
  # Filled in by the front-end build (js/): bundles the widgets and the JupyterLab extension.
  :
}

setup_chromium() {
  # Browser tests drive Debian's Chromium through Playwright (Playwright never downloads a browser here).
  if command -v chromium >/dev/null 2>&1; then return; fi
  log "installing Debian's chromium for the browser tests"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

setup() {
  setup_python
  setup_frontend
}

cmd=${1:-lab}
shift || true
case "$cmd" in
  setup)
    setup; setup_chromium ;;
  lab)
    setup
    exec "$VENV/bin/jupyter" lab notebooks/quickstart.ipynb "$@" ;;
  test)
    setup; setup_chromium
    export PYTHONUNBUFFERED=1
    "$VENV/bin/ruff" check nonlin_explorer tests benchmarks
    set +e
    "$PY" -m pytest "$@"
    rc=$?
    set -e
    # pytest's 5 means "no tests collected": that is a failure for us too.
    exit $rc ;;
  *)
    echo "usage: ./dev.sh [lab|test|setup]" >&2; exit 2 ;;
esac
