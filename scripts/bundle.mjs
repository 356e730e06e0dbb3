// Bundles the host into dist/: the CLI, the library (Node), the browser library and
// the benchmark runner; copies the firmware's generated typings beside the library's.
import { build } from "esbuild";
import { existsSync, chmodSync, mkdirSync, copyFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const node = { bundle: true, platform: "node", format: "esm", target: "node20", packages: "external", sourcemap: true, logLevel: "warning" };
const entries = [
  { in: "host/cli/main.ts", out: "dist/cli.js", opts: { ...node, banner: { js: "#!/usr/bin/env node" } } },
  { in: "host/index.ts", out: "dist/index.js", opts: node },
  { in: "host/bench/main.ts", out: "dist/bench.js", opts: node },
  { in: "host/fuzz/main.ts", out: "dist/fuzz.js", opts: node },
  { in: "host/browser.ts", out: "dist/browser.js", opts: { bundle: true, platform: "browser", format: "esm", target: "es2022", sourcemap: true, logLevel: "warning" } },
];
const missing = entries.filter((e) => !existsSync(e.in)).map((e) => e.in);
if (missing.length) {
  console.error(`bundle: missing entry point(s): ${missing.join(", ")}`);
  process.exit(1);
}
await Promise.all(entries.map((e) => build({ entryPoints: [e.in], outfile: e.out, ...e.opts })));
chmodSync("dist/cli.js", 0o755);

// Typings for the library: tsc declarations, plus the firmware bindings' .d.ts they import.
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.types.json"], { stdio: "inherit" });
mkdirSync("dist/types/build", { recursive: true });
copyFileSync("build/release.d.ts", "dist/types/build/release.d.ts");
