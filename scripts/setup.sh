#!/usr/bin/env bash
# Idempotent set-up shared by `make dev` and `make test`: installs only what is missing.
#   system: capnproto (encodes the Pyodide bundle), ffmpeg, chromium (browser tests)
#   npm:    wrangler, a Node 22 binary, pyodide (package-lock.json pins them)
#   python: .venv with the GPU worker and the test tools; python_modules/ for the Worker
#   cache:  .cache/pyodide/pyodide_dev.capnp.bin, .cache/weights/ (Real-ESRGAN, converted)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

apt_missing=()
command -v capnp >/dev/null || apt_missing+=(capnproto)
command -v ffmpeg >/dev/null || apt_missing+=(ffmpeg)
command -v chromium >/dev/null || apt_missing+=(chromium)
if ((${#apt_missing[@]})); then
  log "apt-get install ${apt_missing[*]}"
  sudo_="" ; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # The lock lists every platform's optional workerd binary, so `npm ci` installs exactly it and
  # never rewrites it (tests/deploy/test_setup_leaves_tree_clean.py).
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The API docs page (workers/public/docs.html) serves Swagger UI from the Worker's own assets, no CDN.
docs_vendor=workers/public/vendor/swagger-ui
if [ ! -f "$docs_vendor/swagger-ui-bundle.js" ] || [ node_modules/.package-lock.json -nt "$docs_vendor/swagger-ui-bundle.js" ]; then
  mkdir -p "$docs_vendor"
  cp node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,LICENSE} "$docs_vendor/"
fi

if [ ! -x .venv/bin/python ]; then
  log "python venv"
  python3 -m venv .venv
fi
pins=(gpu-worker/requirements.txt tests/requirements.txt)
if [ ! -f .venv/.installed ] || [ -n "$(find pyproject.toml "${pins[@]}" -newer .venv/.installed)" ]; then
  log "pip install (GPU worker + test tools, pinned)"
  .venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -e '.[gpu,client,dev]' "${pins[@]/#/--constraint=}"
  touch .venv/.installed
fi

bundle=.cache/pyodide/pyodide_dev.capnp.bin
if [ ! -f "$bundle" ] || [ scripts/pyodide/build_bundle.py -nt "$bundle" ]; then
  log "build the offline Pyodide bundle"
  python3 scripts/pyodide/build_bundle.py node_modules/pyodide "$bundle"
fi

if [ ! -f python_modules/.installed ] || [ workers/requirements.txt -nt python_modules/.installed ]; then
  log "vendor Worker packages into python_modules/"
  rm -rf python_modules
  .venv/bin/pip install -q --disable-pip-version-check --target python_modules \
    --platform pyemscripten_2026_0_wasm32 --python-version 3.14 --implementation cp --abi cp314 \
    --only-binary=:all: --no-deps -r workers/requirements.txt
  find python_modules -name __pycache__ -type d -prune -exec rm -rf {} +
  touch python_modules/.installed
fi

if [ -f scripts/fetch_weights.py ]; then
  .venv/bin/python scripts/fetch_weights.py
fi
