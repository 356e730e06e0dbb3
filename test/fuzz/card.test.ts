// The fuzz card's restore and memory audit on the fuzz build's dirty-page list: every
// page the firmware stores to is listed, so a store outside the writable ranges is caught
// after the very input that made it (not at the next full audit), and restoring the
// listed pages (plus what the host side wrote) puts back every byte, in every target.
import { describe, it, expect } from "vitest";
import { TARGETS, findTarget } from "../../host/fuzz/targets/index.js";
import { FuzzCard } from "../../host/fuzz/card.js";
import { Rng } from "../../host/fuzz/rng.js";
import { loadFirmware } from "../../host/loader.js";
import * as M from "../../assembly/memmap.js";
import type { Harness } from "../../host/fuzz/target.js";

const carded = TARGETS.filter((t) => t.name !== "scenario");
const pageOf = (a: number) => a >>> M.FUZZ_DIRTY_SHIFT;

function listed(fc: FuzzCard): Set<number> {
  const u32 = new Uint32Array(fc.u8.buffer, M.FUZZ_DIRTY_LIST, M.FUZZ_DIRTY_LIST_SIZE >>> 2);
  expect(u32[0]!).toBeLessThan(u32.length); // no overflow in these tests
  return new Set(u32.subarray(1, 1 + u32[0]!));
}

describe("fuzz card", () => {
  it("every target runs on the fuzz build with dirty-page tracking", async () => {
    for (const t of carded) expect((await t.create()).fc?.tracking, t.name).toBe(true);
  });

  it.each(carded.map((t) => [t.name]))("%s: reset puts back every byte of card memory after any input", async (name) => {
    const h = (await findTarget(name)!.create()) as Harness & Required<Pick<Harness, "reset" | "fc">>;
    const rng = new Rng(11);
    let input = h.generate(rng);
    for (let i = 0; i < 30; i++) {
      input = i % 3 === 0 ? h.generate(rng) : h.mutate(input, rng, 1 + (i % 3));
      h.run(input);
      h.reset();
      const d = h.fc.firstDifference();
      expect(d === undefined ? "none" : `0x${d.toString(16)} after input ${i}`).toBe("none");
    }
  });

  it("the list holds every page the firmware wrote during an input", async () => {
    const h = (await findTarget("roce-frame")!.create()) as Harness & Required<Pick<Harness, "reset" | "fc">>;
    const fc = h.fc, rng = new Rng(3);
    const base = fc.u8.slice(); // after create: the baseline, with an empty list
    for (let i = 0; i < 20; i++) {
      h.reset();
      const frame = h.generate(rng);
      h.run(frame);
      const pages = listed(fc);
      // bytes that differ from the baseline: the firmware's (listed) or the host's own (the frame's RX slot and the RX producer)
      const slot = M.NET_RX_SLOTS + (new DataView(base.buffer).getUint32(M.NET_RX_CTRL, true) % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
      const host = [[M.NET_RX_CTRL, M.NET_RX_CTRL + 64], [slot, slot + 2 * M.NET_SLOT_SIZE], // the frame's slot, and the generator's after it
        [M.FUZZ_HITS, M.FUZZ_DIRTY_MAP + M.FUZZ_DIRTY_MAP_SIZE], [M.FUZZ_COV_BASE, M.FUZZ_COV_BASE + M.FUZZ_COV_SIZE]];
      const now = Buffer.from(fc.u8.buffer), was = Buffer.from(base.buffer), P = 1 << M.FUZZ_DIRTY_SHIFT;
      for (let a = 0; a < fc.u8.length; a += P) {
        if (now.compare(was, a, a + P, a, a + P) === 0 || host.some(([lo, hi]) => a >= lo! && a + P <= hi!)) continue;
        for (let b = a; b < a + P; b++) {
          if (now[b] === was[b] || host.some(([lo, hi]) => b >= lo! && b < hi!)) continue;
          expect(pages.has(pageOf(b)), `byte 0x${b.toString(16)} changed, page not listed`).toBe(true);
          break;
        }
      }
    }
  });

  it("a firmware store outside the writable ranges is caught by the per-input audit and undone by reset", async () => {
    const h = (await findTarget("roce-frame")!.create()) as Harness & Required<Pick<Harness, "reset" | "fc">>;
    const fc = h.fc;
    h.run(h.generate(new Rng(5)));
    expect(() => fc.auditCanaries()).not.toThrow();
    // the queue table is no RoCE state: crc16T10DifBlocks stores its guard wherever it is told
    const at = M.QUEUE_TABLE_BASE + 0x40;
    fc.card.fw.crc16T10DifBlocks(M.NET_RX_SLOTS, 512, 1, at, 2);
    expect(listed(fc).has(pageOf(at))).toBe(true);
    expect(() => fc.auditCanaries()).toThrow(new RegExp(`memory: card memory outside every writable range: byte at card offset 0x${at.toString(16)}`));
    h.reset();
    expect(fc.firstDifference()).toBeUndefined();
  });

  it("collecting edges through the firmware's hit list finds what a scan of the map finds", async () => {
    const h = (await findTarget("roce-rx")!.create()) as Harness & Required<Pick<Harness, "fc">>;
    const fc = h.fc, rng = new Rng(9);
    const live = new Set<number>((await import("../../build/fuzz-edges.json", { with: { type: "json" } })).default.ids);
    const seen = new Uint8Array(h.mapSize);
    for (let i = 0; i < 20; i++) {
      h.run(h.generate(rng));
      const map = fc.u8.slice(M.FUZZ_COV_BASE, M.FUZZ_COV_BASE + M.FUZZ_COV_SIZE);
      const want = new Set<number>();
      map.forEach((v, id) => { if (v && live.has(id) && !seen[id]) want.add(id); });
      const before = seen.slice();
      expect(h.collect(seen)).toBe(want.size);
      const got = new Set<number>();
      seen.forEach((v, id) => { if (v && !before[id]) got.add(id); });
      expect([...got].sort()).toEqual([...want].sort());
      expect(fc.u8.subarray(M.FUZZ_COV_BASE, M.FUZZ_COV_BASE + M.FUZZ_COV_SIZE).every((v) => v === 0)).toBe(true); // cleared
    }
  });

  it("on the release build (no list, no hit scan) the same target restores and audits by its ranges", async () => {
    const h = (await findTarget("roce-frame")!.create({ module: await loadFirmware() })) as Harness & Required<Pick<Harness, "reset" | "fc">>;
    expect(h.fc.tracking).toBe(false);
    const rng = new Rng(2);
    for (let i = 0; i < 20; i++) {
      h.run(h.generate(rng));
      h.fullAudit();
      h.reset();
      expect(h.fc.firstDifference()).toBeUndefined();
    }
  });
});
