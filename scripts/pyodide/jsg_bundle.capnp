@0xe1f0a2b3c4d5e6f7;
# The wire layout of workerd's jsg Bundle / Module structs (field ordinals and types only),
# restated so `capnp eval` can encode a Pyodide runtime bundle that workerd reads.
struct Bundle {
  modules @0 :List(Module);
}
struct Module {
  name @0 :Text;
  union {
    src @1 :Data;
    wasm @4 :Data;
    data @5 :Data;
    json @6 :Text;
  }
  tsDeclaration @3 :Text;
  type @2 :ModuleType;
  compileCache @7 :Data;
}
enum ModuleType {
  bundle @0;
  builtin @1;
  internal @2;
}
