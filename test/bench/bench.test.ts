// `npm run bench -- --json` is read by machines: its shape is a contract (the figures are not asserted here).
import { describe, it, expect } from "vitest";
import { execFileSync } from "node:child_process";

const bench = new URL("../../dist/bench.js", import.meta.url);

describe("npm run bench", () => {
  it("prints every figure beside its reference as JSON", () => {
    const out = execFileSync(process.execPath, [bench.pathname, "--quick", "--json", "--only", "copy"], { encoding: "utf8" });
    const { results } = JSON.parse(out);
    expect(results).toHaveLength(1);
    const [r] = results;
    expect(r).toMatchObject({ unit: "GB/s", reference: { name: expect.any(String), value: expect.any(Number) } });
    expect(r.name).toMatch(/copy/);
    expect(r.value).toBeGreaterThan(0);
    expect(r.ratio).toBeCloseTo(r.value / r.reference.value, 6);
  });

  it("rejects an unknown benchmark with exit status 2, naming the ones it has", () => {
    let err: { status: number; stderr: string } | undefined;
    try { execFileSync(process.execPath, [bench.pathname, "--only", "nope"], { encoding: "utf8", stdio: "pipe" }); }
    catch (e) { err = e as { status: number; stderr: string }; }
    expect(err?.status).toBe(2);
    expect(err?.stderr).toMatch(/no benchmark "nope".*copy/);
  });
});
