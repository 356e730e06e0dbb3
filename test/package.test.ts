// The package as a user installs it: imported by name through package.json "exports",
// with typings, a bin, and a browser entry without Node built-ins.
import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";

const root = new URL("..", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));

function node(code: string): string {
  return execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd: root, encoding: "utf8" });
}

describe("package", () => {
  it("is imported by name and runs a scenario through the library", () => {
    const out = node(`
      import { loadScenario, runScenario, Card, VirtioBlkPci, NvmePci, Counter } from "wasm-dpu";
      const r = await runScenario(await loadScenario("local", { number_ios: 2000 }));
      console.log(JSON.stringify({ errors: r.jobs.map((j) => j.errors + j.verifyErrors), card: typeof Card, v: typeof VirtioBlkPci, n: typeof NvmePci, c: Counter[0] }));
    `);
    expect(JSON.parse(out)).toEqual({ errors: [0, 0], card: "function", v: "function", n: "function", c: "polls" });
  });

  it("declares its typings, bin and browser entry, and they exist", () => {
    expect(pkg.name).toBe("wasm-dpu");
    expect(pkg.type).toBe("module");
    for (const f of [pkg.bin["wasm-dpu"], pkg.exports["."].types, pkg.exports["."].default, pkg.exports["./browser"].default, pkg.exports["./firmware.wasm"]]) {
      expect(existsSync(new URL(f, root)), f).toBe(true);
    }
    // The browser bundle must not pull in Node built-ins (the loader names one only inside a string).
    const browser = readFileSync(new URL(pkg.exports["./browser"].default, root), "utf8");
    expect(browser.match(/from\s+["']node:/g)).toBeNull();
    expect(browser.match(/require\(["']node:/g)).toBeNull();
  });
});
