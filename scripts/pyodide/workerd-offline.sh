#!/usr/bin/env bash
# miniflare starts workerd through this file (MINIFLARE_WORKERD_PATH). It points `workerd serve` at the
# locally built Pyodide "dev" bundle, so a Python Worker starts without downloading its runtime.
#   REAL_WORKERD       the real binary (node_modules/@cloudflare/workerd-linux-64/bin/workerd)
#   PYODIDE_CACHE_DIR  the folder holding pyodide_dev.capnp.bin
real=${REAL_WORKERD:?set REAL_WORKERD}
cache=${PYODIDE_CACHE_DIR:?set PYODIDE_CACHE_DIR}
mkdir -p "$cache/packages"
if [ "$1" = "serve" ]; then
  shift
  exec "$real" serve --pyodide-bundle-disk-cache-dir="$cache" --pyodide-package-disk-cache-dir="$cache/packages" "$@"
fi
exec "$real" "$@"
