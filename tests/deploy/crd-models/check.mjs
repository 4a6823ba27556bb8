// Schema checks for custom resources that kubernetes-validate has no schema for (KEDA, Karpenter).
//   node check.mjs DOCS.json   (a JSON array of manifests)   -> prints a JSON array of problems
// Two passes over each document, both from the CRDs' OpenAPI schemas as published in the
// @kubernetes-models packages (pinned in package-lock.json):
//   1. the packages' compiled validators: types, required fields, enums, patterns;
//   2. tsc on the document as a typed object literal: catches unknown fields (excess properties),
//      which the validators let through.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const MODELS = {
  "keda.sh/v1alpha1/ScaledObject": "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject",
  "keda.sh/v1alpha1/ScaledJob": "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledJob",
  "keda.sh/v1alpha1/TriggerAuthentication": "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication",
  "karpenter.sh/v1/NodePool": "@kubernetes-models/karpenter/karpenter.sh/v1/NodePool",
  "karpenter.k8s.aws/v1/EC2NodeClass": "@kubernetes-models/karpenter/karpenter.k8s.aws/v1/EC2NodeClass",
};

const docs = JSON.parse(readFileSync(process.argv[2], "utf8"));
const problems = [];
const typed = [];
for (const [i, doc] of docs.entries()) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const module = MODELS[key];
  if (!module) {
    problems.push({ doc: i, kind: key, error: "no schema for this kind" });
    continue;
  }
  const mod = await import(module);
  const Model = mod[doc.kind];
  try {
    new Model(doc).validate();
  } catch (e) {
    problems.push({ doc: i, kind: key, error: String(e.message || e) });
  }
  typed.push({ i, module, iface: `I${doc.kind}`, doc });
}

if (typed.length) {
  const dir = mkdtempSync(join(here, ".tsc-"));
  try {
    const lines = typed.map(({ i, module, iface }) => `import type { ${iface} as T${i} } from "${module}";`);
    for (const { i, doc } of typed) lines.push(`export const doc${i}: T${i} = ${JSON.stringify(doc, null, 1)};`);
    writeFileSync(join(dir, "docs.ts"), lines.join("\n") + "\n");
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext",
                         target: "es2022", skipLibCheck: true, types: [] },
      files: ["docs.ts"],
    }));
    try {
      execFileSync(process.execPath, [join(here, "node_modules/typescript/bin/tsc"), "-p", dir],
                   { cwd: here, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      const out = (e.stdout || "") + (e.stderr || "");
      for (const line of out.split("\n").filter((l) => l.includes("error TS"))) {
        problems.push({ doc: null, kind: "tsc", error: line.replace(dir, "") });
      }
      if (!out.includes("error TS")) problems.push({ doc: null, kind: "tsc", error: out || String(e) });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(JSON.stringify({ checked: docs.length, problems }));
