#!/usr/bin/env python3
"""Build workerd's Pyodide "dev" runtime bundle (pyodide_dev.capnp.bin) from the npm `pyodide` package.

Why: workerd downloads its Pyodide bundle at start and hash-checks every released one. Only the bundle
named "dev" (selected by the local-only compatibility flag `python_workers_development`) is read from
the disk cache unchecked, so an offline machine can run Python Workers from a bundle built here.

The bundle is a jsg Bundle message with three internal modules: the patched Emscripten glue, the wasm
binary and the stdlib zip. The text replacements below are the interface workerd's glue code expects
(its builtin_wrappers); a smaller set fails at start-up. Each must match at least once: a Pyodide
release that changes the glue makes this script fail loudly instead of producing a broken bundle.
Two patches target glue that some Pyodide builds do not have (314.0.6 among them); they are optional.

usage: build_bundle.py <node_modules/pyodide> <out.capnp.bin>
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PRELUDE = (
    "import { addEventListener, getRandomValues, location, monotonicDateNow, newWasmModule, "
    "patchedApplyFunc, patchedLoadLibData, wasmInstantiate, patched_PyEM_CountFuncParams } "
    'from "pyodide-internal:builtin_wrappers";\n'
)
NO_EVAL = "(() => {throw new Error('Internal Emscripten code tried to eval')})()"
REPLACEMENTS = [
    ("new WebAssembly.Module", "newWasmModule"),
    ("WebAssembly.instantiate", "wasmInstantiate"),
    ("Date.now", "monotonicDateNow"),
    ("crypto.getRandomValues(", "getRandomValues(Module, "),
    ("eval(func)", NO_EVAL),
    ("eval(data)", NO_EVAL),
    ("eval(UTF8ToString(ptr))", NO_EVAL),
    ("export default _createPyodideModule;",
     PRELUDE + "export default _createPyodideModule; export { _createPyodideModule };"),
    ("function loadLibData(){",
     "function loadLibData(){ var libData = patchedLoadLibData(Module, libName, flags.rpath);"
     " return flags.loadAsync ? Promise.resolve(libData) : libData; }\nfunction dummiedOutOrigLoadLibData(){"),
    ("getMemory(", "Module.getMemoryPatched(Module, libName, "),
    ("function _PyEM_CountFuncParams(func){",
     "function _PyEM_CountFuncParams(func){ return patched_PyEM_CountFuncParams(Module, func);"),
    ('console.error("Recursive call to fatal_error. Inner error was:");',
     'console.error("Recursive call to fatal_error. Inner error was:");\n'
     "try { API.on_fatal?.(e); } catch(e2) { console.error(e2); }\n"),
]
OPTIONAL = {old for old, _ in REPLACEMENTS[-2:]}
SCHEMA = """@0xa7c3e19b2d4f6801;
using M = import "/jsg_bundle.capnp";
const pyodideRuntimeBundle :M.Bundle = (modules = [
  (name = "pyodideRuntime-internal:pyodide.asm", src = embed "pyodide.asm.js", type = internal),
  (name = "pyodideRuntime-internal:pyodide.asm.wasm", wasm = embed "pyodide.asm.wasm", type = internal),
  (name = "pyodideRuntime-internal:python_stdlib.zip", data = embed "python_stdlib.zip", type = internal),
]);
"""


def patch_glue(src: str) -> str:
    for old, new in REPLACEMENTS:
        if old not in src and old not in OPTIONAL:
            sys.exit(f"build_bundle: {old!r} not found in pyodide.asm.mjs: unsupported Pyodide version")
        src = src.replace(old, new)
    return src


def main(pkg: str, out: str) -> None:
    with tempfile.TemporaryDirectory(prefix="pyodide-bundle-") as work:
        with open(os.path.join(pkg, "pyodide.asm.mjs")) as f:
            glue = patch_glue(f.read())
        with open(os.path.join(work, "pyodide.asm.js"), "w") as f:
            f.write(glue)
        for name in ("pyodide.asm.wasm", "python_stdlib.zip"):
            shutil.copyfile(os.path.join(pkg, name), os.path.join(work, name))
        with open(os.path.join(work, "bundle.capnp"), "w") as f:
            f.write(SCHEMA)
        tmp = out + ".tmp"
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(tmp, "wb") as fo:
            subprocess.check_call(
                ["capnp", "eval", "-o", "binary", "-I", HERE, "bundle.capnp", "pyodideRuntimeBundle"],
                cwd=work, stdout=fo)
        os.replace(tmp, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
