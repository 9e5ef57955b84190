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
      "$PY" -m pip install -q "torch>=2.4"
    else
      log "no NVIDIA GPU: installing the CPU build torch==$TORCH_CPU_VERSION"
      "$PY" -m pip install -q "torch==$TORCH_CPU_VERSION"
    fi
  fi
  # Reinstall the package only when its declared inputs changed.
  local stamp want
  want=$(cat pyproject.toml js/package.json 2>/dev/null | sha256sum | cut -c1-16)
  stamp=$(cat "$VENV/.nonlin_stamp" 2>/dev/null || true)
  # Checked from / : in the repo root the source folder would import even when nothing is installed.
  if [ "$want" != "$stamp" ] || ! (cd / && "$PY" -c "import nonlin_explorer") 2>/dev/null; then
    log "installing nonlin_explorer (editable) with its test extras"
    "$PY" -m pip install -q -e ".[test]"
    echo "$want" > "$VENV/.nonlin_stamp"
  fi
  # Tests only: torchvision's model code (tests/test_real_architectures.py, benchmarks/bench_models.py). Its
  # release pairs with the installed torch (0.N+15 for torch 2.N), installed without dependencies so that it never
  # swaps the CPU torch for a CUDA one; nonlin_explorer/torchvision_compat.py imports it without its compiled ops.
  if ! "$PY" -m pip show -q torchvision >/dev/null 2>&1; then
    local tv
    tv=$("$PY" -c "import torch; major, minor = torch.__version__.split('+')[0].split('.')[:2]; print(f'0.{int(minor) + 15}.*')")
    log "installing torchvision==$tv (tests only, no dependencies)"
    "$PY" -m pip install -q --no-deps "torchvision==$tv"
  fi
  # The fused CPU gate kernels (nonlin_explorer/fused_gates.cpp), compiled once per machine into ~/.cache
  # (about a minute; nothing when built). Without a C++ compiler it says so and gates run eagerly.
  "$VENV/bin/nonlin-explorer" kernels
}

setup_frontend() {
  # The front end (js/, Node.js 20 + npm): npm packages when the lockfile changed, then the build
  # (js/scripts/build.mjs: anywidget bundles -> nonlin_explorer/static, prebuilt JupyterLab extension ->
  # nonlin_explorer/labextension), which skips itself when no input changed. pip install runs the same
  # build through hatch-jupyter-builder; here, JupyterLab is pointed at the build folder itself (a symlink,
  # as `jupyter labextension develop` makes), so a rebuild shows after a browser reload.
  if ! command -v npm >/dev/null 2>&1; then
    log "Node.js (20 or newer) with npm is needed to build the front end in js/"; exit 1
  fi
  local want stamp
  want=$(cat js/package.json js/package-lock.json | sha256sum | cut -c1-16)
  stamp=$(cat js/node_modules/.nonlin_stamp 2>/dev/null || true)
  if [ ! -d js/node_modules ]; then
    log "installing the front end's npm packages (js/package-lock.json)"
    (cd js && npm ci --no-audit --no-fund --loglevel=error)
  elif [ "$want" != "$stamp" ]; then
    (cd js && npm install --no-audit --no-fund --loglevel=error)
  fi
  echo "$want" > js/node_modules/.nonlin_stamp
  (cd js && npm run --silent build)
  local share="$VENV/share/jupyter/labextensions/nonlin-explorer"
  if [ "$(readlink "$share" 2>/dev/null)" != "$ROOT/nonlin_explorer/labextension" ]; then
    rm -rf "$share"
    mkdir -p "$(dirname "$share")"
    ln -s "$ROOT/nonlin_explorer/labextension" "$share"
  fi
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
    root_flag=()
    [ "$(id -u)" = 0 ] && root_flag=(--allow-root)  # containers and CI machines often run as root
    exec "$VENV/bin/jupyter" lab "${root_flag[@]}" notebooks/quickstart.ipynb "$@" ;;
  test)
    setup; setup_chromium
    export PYTHONUNBUFFERED=1
    # Small problems run far faster on one torch thread than on two competing ones (measured: compress
    # 0.6 s vs 4.6 s on a loaded 2-core machine); this reaches kernels and subprocesses too.
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
    "$VENV/bin/ruff" check nonlin_explorer tests benchmarks
    # Front end: types (tsc --noEmit) and lint (eslint), see js/package.json "check".
    (cd js && npm run --silent check)
    set +e
    "$PY" -m pytest "$@"
    rc=$?
    set -e
    # pytest's 5 means "no tests collected": that is a failure for us too.
    exit $rc ;;
  *)
    echo "usage: ./dev.sh [lab|test|setup]" >&2; exit 2 ;;
esac
