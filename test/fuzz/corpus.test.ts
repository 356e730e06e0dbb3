// The fuzzing harness as `npm test` runs it: every target replays its corpus
// (test/fuzz/corpus/<target>/) through every oracle, a short seeded run finds nothing,
// and the machinery a security engineer relies on works: findings are caught,
// minimized, saved with target and seed, and replay; runs repeat from their seed.
import { describe, it, expect } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TARGETS, findTarget } from "../../host/fuzz/targets/index.js";
import { corpusFiles, readInput, fuzz, replay } from "../../host/fuzz/engine.js";
import { Finding } from "../../host/fuzz/card.js";
import { Rng } from "../../host/fuzz/rng.js";
import type { Harness, Target } from "../../host/fuzz/target.js";
import * as M from "../../assembly/memmap.js";
import { Counter } from "../../assembly/counters.js";
import * as W from "../../assembly/rdma/wire.js";
import { StorageController } from "../../host/target/controller.js";

// what each corpus reaches at least (it reached more when it was distilled)
const FLOOR: Record<string, number> = { "virtio-split": 300, "virtio-packed": 300, nvme: 450, scenario: 30, "roce-rx": 550, "roce-frame": 550, "rdma-cm": 450, "nvmf-capsule": 700, "dpu-rx": 700 };
const quiet = { log: () => {}, corpus: "/nonexistent", artifacts: mkdtempSync(join(tmpdir(), "fuzz-")) };

describe.each(TARGETS.map((t) => [t.name, t] as [string, Target]))("fuzz target %s", (name, t) => {
  it("replays its corpus: no trap, no memory outside the windows touched, every invariant holds", async () => {
    const h = await t.create();
    const files = corpusFiles(join("test", "fuzz", "corpus", name));
    expect(files.length).toBeGreaterThan(5);
    const seen = new Uint8Array(h.mapSize);
    let reached = 0;
    for (const f of files) {
      const { input } = readInput(f);
      expect(() => { h.run(input); h.fullAudit(); }, f).not.toThrow();
      reached += h.collect(seen);
    }
    expect(reached).toBeGreaterThanOrEqual(FLOOR[name]!);
  });

  it("finds nothing in 200 seeded runs and reaches new coverage", async () => {
    const r = await fuzz(t, { seed: 1, runs: 200, ...quiet });
    expect(r.finding).toBeUndefined();
    expect(r.runs).toBe(200);
    expect(r.reached).toBeGreaterThan(FLOOR[name]! / 3);
  });
});

describe("fuzz machinery", () => {
  it("a run repeats from its seed: same inputs, same coverage, same corpus", async () => {
    const t = findTarget("virtio-packed")!;
    const a = await fuzz(t, { seed: 7, runs: 100, ...quiet }), b = await fuzz(t, { seed: 7, runs: 100, ...quiet });
    expect([b.reached, b.corpus]).toEqual([a.reached, a.corpus]);
  });

  it("a finding is minimized, saved with its target and seed, and replays", async () => {
    // a target whose "parser" fails on the byte sequence 13 37 anywhere in the input
    const bad: Target = {
      name: "toy", about: "test",
      create: async (): Promise<Harness> => ({
        total: 2, unit: "edges", mapSize: 2,
        generate: (rng: Rng) => Uint8Array.from({ length: 64 }, () => (rng.chance(0.1) ? 13 : rng.below(64))),
        mutate: (input: Uint8Array, rng: Rng) => { const c = input.slice(); c[rng.below(c.length)] = rng.chance(0.5) ? 37 : rng.below(256); return c; },
        run: (input: Uint8Array) => { for (let i = 0; i + 1 < input.length; i++) if (input[i] === 13 && input[i + 1] === 37) throw new Finding("toy", "13 37 seen"); },
        collect: () => 0, fullAudit: () => {}, restoreAll: () => {},
      }),
    };
    const r = await fuzz(bad, { seed: 3, runs: 100000, ...quiet });
    expect(r.finding?.message).toBe("toy: 13 37 seen");
    expect(r.finding!.size).toBe(2); // minimized to the two bytes
    const saved = readInput(r.finding!.file!);
    expect(saved).toMatchObject({ target: "toy", seed: 3 });
    expect(Array.from(saved.input)).toEqual([13, 37]);
    expect(readFileSync(r.finding!.file!, "utf8")).toContain("toy: 13 37 seen");
    expect((await replay(bad, saved.input)).finding).toBe("toy: 13 37 seen");
  });

  it("the memory audit catches a byte changed in the canary VM and anywhere outside the writable ranges", async () => {
    const h = await findTarget("virtio-split")!.create() as Harness & { fc: { card: { guests: { u8: Uint8Array }[] }; u8: Uint8Array } };
    const input = readInput(corpusFiles(join("test", "fuzz", "corpus", "virtio-split"))[0]!).input;
    h.run(input);
    h.fc.card.guests[1]!.u8[100]! ^= 1; // the canary VM
    expect(() => h.run(input)).toThrow(/memory: canary VM's window/);
    h.restoreAll();
    h.run(input);
    h.fc.u8[M.NET_RX_SLOTS + 5]! ^= 1; // a frame ring no virtio request may touch
    expect(() => h.fullAudit()).toThrow(/memory: card memory outside every writable range: byte at card offset/);
    h.restoreAll();
    expect(() => { h.run(input); h.fullAudit(); }).not.toThrow();
  });

  it("roce-frame: field mutations still get past the IPv4 checksum and the ICRC, byte havoc does not", async () => {
    const h = await findTarget("roce-frame")!.create() as Harness & Required<Pick<Harness, "fc">>;
    const rng = new Rng(4);
    const drops = (inputs: Uint8Array[]) => {
      // every run starts from the baseline's counters: the difference is that frame's drops
      const c0 = h.fc.counter(Counter.err_rdma_bad_icrc) + h.fc.counter(Counter.err_rdma_bad_ip_checksum);
      let n = 0;
      for (const inp of inputs) { h.run(inp); n += h.fc.counter(Counter.err_rdma_bad_icrc) + h.fc.counter(Counter.err_rdma_bad_ip_checksum) - c0; }
      return n / inputs.length;
    };
    const parents = Array.from({ length: 200 }, () => h.generate(rng));
    const mutated = parents.map((p) => h.mutate(p, rng));
    // a byte after the BTH (extension headers, payload) changed behind the ICRC's back
    const after = W.ETH_HDR_LEN + W.IP_HDR_LEN + W.UDP_HDR_LEN + W.BTH_LEN; // the first byte after the BTH
    const flipped = parents.filter((p) => p.length > after + W.ICRC_LEN).map((p) => {
      const b = p.slice();
      b[after + rng.below(b.length - after - W.ICRC_LEN)] ^= 1 + rng.below(255);
      return b;
    });
    expect(drops(mutated)).toBeLessThan(0.25); // the fixups are skipped 15% of the time, on purpose
    expect(drops(flipped)).toBeGreaterThan(0.9);
  });

  it("nvmf-capsule: a command the controllers never answer is a finding", async () => {
    const h = await findTarget("nvmf-capsule")!.create();
    const input = readInput(corpusFiles(join("test", "fuzz", "corpus", "nvmf-capsule"))[0]!).input;
    expect(() => h.run(input)).not.toThrow();
    const proto = StorageController.prototype as unknown as { respond: (c: unknown) => void };
    const respond = proto.respond;
    let skip = 3; // the third response (after the bring-up's Connect and Property Set) is lost
    proto.respond = function (this: unknown, c: unknown) { if (--skip !== 0) respond.call(this, c); };
    try {
      expect(() => h.run(input)).toThrow(/invariant: (queue \d|\d+ capsules sent|controller \d)/);
    } finally { proto.respond = respond; }
    h.restoreAll();
    expect(() => h.run(input)).not.toThrow();
  });

  it("dpu-rx: a request completed OK without a good response to its CID is a finding", async () => {
    const h = await findTarget("dpu-rx")!.create() as Harness & { reqs: { status: number }[]; fc: { card: { guests: { base: number }[] }; u8: Uint8Array } };
    h.run(new Uint8Array(1)); // no frame: at the end the teardown fails every request, each once
    const g = h.fc.card.guests[0]!;
    expect(h.reqs.every((r) => h.fc.u8[g.base + r.status] === 1)).toBe(true); // IOERR
    h.fc.u8[g.base + h.reqs[0]!.status] = 0; // as if the DPU had said OK
    expect(() => (h as unknown as { checkCompletions(all: boolean): void }).checkCompletions(true)).toThrow(/completed OK, but no well-formed success response/);
  });
});
