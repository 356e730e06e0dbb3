// scenario: scenario files, the host-side input a user (or a CI job) hands the CLI.
// Inputs are JSON text: generated from the schema (VMs, devices, disks, jobs, timing),
// mutated at a JSON path (drop a field, wrong type, boundary numbers, odd size strings,
// more VMs) or byte by byte. There is no firmware here, so the feedback is the set of
// distinct validation outcomes (accepted, or the rule and field path that refused it).
//
// Oracles: parseScenario either returns a scenario or throws a ScenarioError with one
// line "scenario<path>: <problem>" (any other exception is a finding); it never changes
// its input; an accepted scenario has finite whole sizes, fits one card's memory and
// gives the same result when parsed twice.
import { parseScenario, ScenarioError, DEVICES } from "../../scenario.js";
import { layoutCard } from "../../layout.js";
import { RW_MODES } from "../../workload/job.js";
import { Finding } from "../card.js";
import { havoc } from "../program.js";
import type { Rng } from "../rng.js";
import type { Harness, Target } from "../target.js";

const MAP = 1 << 16;
const SIZES = ["4k", "64M", "1G", "512", "8k", "16M", "3G", "4G", "0", "-1", "1.5k", "k", "1e3", "1T", "99999999999G", "0x1000", " 4k", "4K", "4kb", ""];
const NUMS = [0, 1, -1, 2, 3, 127, 128, 255, 256, 512, 4096, 65536, 65537, 2 ** 31, 2 ** 32, 2 ** 53, 1.5, -0, 1e308, 0.1];
const WEIRD = [null, true, false, [], {}, "", "x", 0, -1, 1e309 /* → null in JSON */, "NaN", "Infinity"];

export const scenarioTarget: Target = {
  name: "scenario",
  about: "scenario files (host-side validation): schema-built JSON, path and byte mutations; oracles: only ScenarioError with a field path, no input mutation, accepted scenarios fit a card and parse the same twice",
  create: async () => new ScenarioHarness(),
};

function vm(rng: Rng, i: number): Record<string, unknown> {
  const device = rng.pick(DEVICES);
  const bsz = rng.pick([512, 4096]);
  const v: Record<string, unknown> = {
    name: rng.chance(0.9) ? `vm${i}` : rng.pick(["", "a b", "vm0", "x/y", "ü"]),
    ram: rng.pick(["32M", "64M", "1M", "256k", 1 << 24, "2G"]),
    device,
    disk: { backend: rng.chance(0.9) ? "memory" : "file", size: rng.pick(["64M", "1M", "4M", 65536, "1G"]), block_size: bsz, ...(rng.chance(0.1) ? { path: "/tmp/x.img" } : {}) },
  };
  if (rng.chance(0.7)) v.queues = rng.pick([1, 2, 4, 31, 32]);
  if (rng.chance(0.7)) v.queue_size = rng.pick([2, 16, 128, 256, 512, 1024, 100, 32768]);
  if (device === "virtio-blk" && rng.chance(0.3)) v.packed = rng.chance(0.5);
  if (rng.chance(0.2)) v.polling = true;
  if (rng.chance(0.7)) v.job = job(rng);
  return v;
}

function job(rng: Rng): Record<string, unknown> {
  const j: Record<string, unknown> = {};
  if (rng.chance(0.7)) j.rw = rng.pick([...RW_MODES, "rw", "bogus"]);
  if (rng.chance(0.3)) j.rwmixread = rng.pick([0, 50, 100, 101]);
  if (rng.chance(0.6)) j.bs = rng.pick(["4k", "512", "64k", "1M", 4096, "3k"]);
  if (rng.chance(0.6)) j.iodepth = rng.pick([1, 8, 32, 128, 1024]);
  if (rng.chance(0.5)) j.number_ios = rng.pick([1, 1000, 100000]);
  if (rng.chance(0.3)) j.runtime = rng.pick(["5ms", "2s", 1000, "1m", "0s"]);
  if (rng.chance(0.3)) j.verify = rng.chance(0.5);
  if (rng.chance(0.2)) j.size = rng.pick(["1M", "64M", "4k"]);
  if (rng.chance(0.2)) j.seed = rng.pick([0, 1, 0xffffffff]);
  return j;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

class ScenarioHarness implements Harness {
  readonly unit = "outcomes";
  readonly total = 0; // unknown: outcomes are discovered, not enumerated
  readonly mapSize = MAP;
  private hits: number[] = [];

  generate(rng: Rng): Uint8Array {
    const s: Record<string, unknown> = { vms: Array.from({ length: 1 + rng.small(4) }, (_, i) => vm(rng, i)) };
    if (rng.chance(0.5)) s.name = "fuzz";
    if (rng.chance(0.5)) s.seed = rng.pick([0, 1, 42, 0xffffffff]);
    if (rng.chance(0.3)) s.poll_budget = rng.pick([1, 256, 65536, 0]);
    if (rng.chance(0.3)) s.timing = { poll_ns: rng.pick([0, 250]), request_ns: 120, pcie_gb_per_s: rng.pick([15.75, 0, -1]), host_io_ns: 8000 };
    if (rng.chance(0.5)) s.job = job(rng);
    return enc.encode(JSON.stringify(s));
  }

  mutate(input: Uint8Array, rng: Rng, steps = 1): Uint8Array {
    let out = input;
    for (let k = 0; k < steps; k++) out = this.mutateOnce(out, rng);
    return out;
  }

  private mutateOnce(input: Uint8Array, rng: Rng): Uint8Array {
    let doc: unknown;
    try { doc = JSON.parse(dec.decode(input)); } catch { return havoc(input, rng); }
    // all (parent, key) pairs in the document
    const slots: [Record<string, unknown> | unknown[], string | number][] = [];
    const walk = (v: unknown) => {
      if (Array.isArray(v)) v.forEach((x, i) => { slots.push([v, i]); walk(x); });
      else if (v && typeof v === "object") for (const k of Object.keys(v)) { slots.push([v as Record<string, unknown>, k]); walk((v as Record<string, unknown>)[k]); }
    };
    walk(doc);
    if (slots.length === 0) return this.generate(rng);
    const [parent, key] = rng.pick(slots);
    const p = parent as Record<string | number, unknown>;
    switch (rng.below(7)) {
      case 0: if (Array.isArray(parent)) parent.splice(key as number, 1); else delete p[key]; break;
      case 1: p[key] = rng.pick(NUMS); break;
      case 2: p[key] = rng.pick(SIZES); break;
      case 3: p[key] = rng.pick(WEIRD); break;
      case 4: if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number])); else p[rng.pick(["extra", "vms", "job", "timing", "name"])] = structuredClone(p[key]); break;
      case 5: { const v = p[key]; if (typeof v === "number") p[key] = v * rng.pick([2, -1, 1024, 0.5]) + rng.pick([0, 1, -1]); else p[key] = vm(rng, 9); break; }
      case 6: { const d = doc as Record<string, unknown>; if (d && Array.isArray(d.vms)) d.vms.push(vm(rng, d.vms.length)); break; }
    }
    return enc.encode(JSON.stringify(doc));
  }

  run(input: Uint8Array): void {
    const text = dec.decode(input);
    let doc: unknown;
    try { doc = JSON.parse(text); } catch { this.hit("not json"); return; }
    const before = JSON.stringify(doc);
    let s;
    try { s = parseScenario(doc); } catch (e) {
      if (!(e instanceof ScenarioError)) throw e; // a TypeError, RangeError, ... is a finding
      const m = e.message;
      if (!/^scenario(\S*): \S/.test(m) || m.includes("\n") || /undefined|NaN|\[object /.test(m.replace(/"(?:[^"\\]|\\.)*"/g, ""))) throw new Finding("message", `unclear ScenarioError message: ${JSON.stringify(m)}`);
      if (JSON.stringify(doc) !== before) throw new Finding("invariant", "parseScenario changed its input");
      this.hit(m.replace(/\d+/g, "#").replace(/"[^"]*"/g, "\"…\""));
      return;
    }
    if (JSON.stringify(doc) !== before) throw new Finding("invariant", "parseScenario changed its input");
    for (const [i, v] of s.vms.entries()) {
      for (const [k, x] of [["ram", v.ram], ["disk.size", v.disk.size], ["job.bs", v.job.bs], ["job.iodepth", v.job.iodepth]] as const) {
        if (!Number.isSafeInteger(x) || x <= 0) throw new Finding("invariant", `accepted scenario has vms[${i}].${k} = ${x}`);
      }
      if (v.job.runtime !== undefined && !(Number.isFinite(v.job.runtime) && v.job.runtime > 0)) throw new Finding("invariant", `accepted scenario has vms[${i}].job.runtime = ${v.job.runtime}`);
    }
    try { layoutCard(s.vms.map((v) => (v.disk.backend === "memory" ? v.disk.size : null)), s.vms.map((v) => v.ram)); } catch (e) {
      throw new Finding("invariant", `accepted scenario does not fit a card: ${(e as Error).message}`);
    }
    if (JSON.stringify(parseScenario(JSON.parse(before))) !== JSON.stringify(s)) throw new Finding("invariant", "the same scenario parsed twice differs");
    this.hit(`ok ${s.vms.map((v) => `${v.device}${v.packed ? "p" : ""}${v.disk.backend}${v.job.rw}`).join(",")}`);
  }

  private hit(sig: string): void {
    let h = 2166136261;
    for (let i = 0; i < sig.length; i++) h = Math.imul(h ^ sig.charCodeAt(i), 16777619);
    this.hits.push((h >>> 0) % MAP);
  }

  collect(seen: Uint8Array): number {
    let fresh = 0;
    for (const id of this.hits) if (seen[id] === 0) { seen[id] = 1; fresh++; }
    this.hits = [];
    return fresh;
  }

  fullAudit(): void {}
  restoreAll(): void { this.hits = []; }
}
