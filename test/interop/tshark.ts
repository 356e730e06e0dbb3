// Running tshark for the interop suite: it must be there (a missing peer fails the test).
import { spawnSync } from "node:child_process";

// Every test calls tshark itself (no beforeAll check): vitest reports tests behind a failed
// hook as skipped, and a missing peer must show as failed tests.
const MISSING = "tshark is not installed (Debian: apt-get install tshark; .ci/run installs it): the interop suite needs the real peer";

/** tshark with two-pass analysis (-2), reading `file`; returns stdout, throws with stderr on failure. */
export function tshark(file: string, ...args: string[]): string {
  const r = spawnSync("tshark", ["-2", "-r", file, ...args], { encoding: "utf8", maxBuffer: 1 << 30 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") throw new Error(MISSING);
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`tshark ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Lines of `tshark -V` output that report a malformed packet or an expert error. */
export function problems(verbose: string): string[] {
  return verbose.split("\n").filter((l) => /Malformed Packet|Expert Info \(Error|Severity level: Error/.test(l));
}

export type Layers = Record<string, unknown>;

/** Packets of `tshark -T json`, as their layers. */
export function packets(file: string, ...args: string[]): Layers[] {
  return (JSON.parse(tshark(file, "-T", "json", ...args)) as { _source: { layers: Layers } }[]).map((p) => p._source.layers);
}

/** Every field of a packet by name, nested trees flattened (the first occurrence wins). */
export function fields(layers: Layers): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (o: unknown, name: string) => {
    if (o && typeof o === "object" && !Array.isArray(o)) for (const [k, v] of Object.entries(o)) walk(v, k);
    else if (Array.isArray(o)) o.forEach((v) => walk(v, name));
    else if (!out.has(name)) out.set(name, String(o));
  };
  walk(layers, "");
  return out;
}
