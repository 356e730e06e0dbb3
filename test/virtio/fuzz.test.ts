// Random rings and requests from a hostile guest: the firmware never traps, never
// touches another VM's window, leaks no request, and every chain it took was either
// completed or dropped with a counted reason.
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import { VirtioBlkPci } from "../../host/pcie/virtio-pci.js";
import { VirtioBlkDriver } from "../../host/guest/virtio-blk.js";
import * as V from "../../assembly/virtio/layout.js";

class Rng {
  constructor(private x: number) {}
  next(): number { let x = this.x; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.x = x >>> 0; return this.x; }
  below(n: number): number { return this.next() % n; }
  chance(p: number): boolean { return this.next() / 2 ** 32 < p; }
}

const TYPES = [V.BLK_T_IN, V.BLK_T_OUT, V.BLK_T_FLUSH, V.BLK_T_GET_ID, V.BLK_T_DISCARD, V.BLK_T_WRITE_ZEROES, 3, 99];
const GUEST = 1 << 20;

async function setup(packed: boolean) {
  const card = await Card.create({
    guests: [{ ramBytes: GUEST }, { ramBytes: 1 << 16 }],
    disks: [{ kind: "memory", bytes: 1 << 20, blockSize: 512 }],
  });
  const dev = new VirtioBlkPci(card, { guest: 0, disk: 0, queueSize: 64 });
  const drv = new VirtioBlkDriver(dev, card.guests[0]!, { packed });
  const other = card.guests[1]!;
  for (let i = 0; i < other.size; i++) other.u8[i] = (i * 31) & 0xff;
  return { card, dev, drv, g: card.guests[0]!, other };
}

/** Headers and small payloads the random descriptors may point at. */
function scribble(g: { dv: DataView; u8: Uint8Array }, rng: Rng, area: number): void {
  for (let h = 0; h < 64; h++) {
    const a = area + h * 32;
    g.dv.setUint32(a, TYPES[rng.below(TYPES.length)]!, true);
    g.dv.setUint32(a + 8, rng.chance(0.8) ? rng.below(4096) : rng.next(), true);
    g.dv.setUint32(a + 12, rng.chance(0.9) ? 0 : rng.next(), true);
    g.dv.setUint32(a + 16, rng.below(16), true); // discard num_sectors
    g.dv.setUint32(a + 20, rng.chance(0.8) ? 0 : rng.below(4), true); // discard flags
  }
}

function randomDesc(g: { dv: DataView }, rng: Rng, at: number, n: number, area: number, packedWrap?: number): void {
  const addr = rng.chance(0.7) ? area + rng.below(64) * 32 : rng.chance(0.5) ? rng.below(GUEST) : rng.next() * 4096;
  const len = rng.chance(0.1) ? rng.next() : rng.chance(0.1) ? 0 : rng.chance(0.5) ? 16 : 1 + rng.below(2048);
  let flags = rng.below(8); // NEXT, WRITE, INDIRECT at random
  g.dv.setUint32(at, addr >>> 0, true);
  g.dv.setUint32(at + 4, Math.floor(addr / 2 ** 32) >>> 0, true);
  g.dv.setUint32(at + 8, len >>> 0, true);
  if (packedWrap === undefined) {
    g.dv.setUint16(at + 12, flags, true);
    g.dv.setUint16(at + 14, rng.chance(0.9) ? rng.below(n) : rng.below(0x10000), true);
  } else {
    if (rng.chance(0.8)) flags |= packedWrap ? V.PDESCF_AVAIL : V.PDESCF_USED;
    else flags |= rng.below(2) ? V.PDESCF_AVAIL | V.PDESCF_USED : 0;
    g.dv.setUint16(at + 12, rng.chance(0.95) ? rng.below(n) : rng.below(0x10000), true);
    g.dv.setUint16(at + 14, flags, true);
  }
}

/** A well-formed header + status chain at ring slot i (and i+1), so some requests are valid. */
function plant(g: { dv: DataView }, rng: Rng, desc: number, i: number, n: number, area: number, packedWrap?: number): void {
  if (i + 1 >= n) return;
  const h = area + rng.below(64) * 32;
  const put = (k: number, addr: number, len: number, flags: number) => {
    const at = desc + k * 16;
    g.dv.setUint32(at, addr, true);
    g.dv.setUint32(at + 4, 0, true);
    g.dv.setUint32(at + 8, len, true);
    if (packedWrap === undefined) { g.dv.setUint16(at + 12, flags, true); g.dv.setUint16(at + 14, k + 1, true); }
    else { g.dv.setUint16(at + 12, i, true); g.dv.setUint16(at + 14, flags | (packedWrap ? V.PDESCF_AVAIL : V.PDESCF_USED), true); }
  };
  put(i, h, 16, V.DESCF_NEXT);
  put(i + 1, h + 24, 1, V.DESCF_WRITE);
}

describe("fuzzed virtqueues", () => {
  it.each([["split", false], ["packed", true]])("%s: no trap, no write outside the VM, no leak, nothing lost silently", async (_n, packed) => {
    const { card, drv, dev, g, other } = await setup(packed as boolean);
    const rng = new Rng(packed ? 0xbad5eed : 0x5eedbad);
    const ring = drv.ring(0);
    const area = g.alloc(64 * 32, 64);
    // indirect tables: random descriptors too
    const tables = g.alloc(16 * 16 * 8, 16);
    const otherBefore = other.u8.slice();
    let availIdx = 0, wrap = 1;
    for (let round = 0; round < 300; round++) {
      scribble(g, rng, area);
      for (let t = 0; t < 16 * 8; t++) randomDesc(g, rng, tables + t * 16, 8, area, packed ? wrap : undefined);
      for (let i = 0; i < ring.size; i++) randomDesc(g, rng, ring.desc + i * 16, ring.size, area, packed ? wrap : undefined);
      for (let i = 0; i < ring.size; i++) if (rng.chance(0.15)) plant(g, rng, ring.desc, i, ring.size, area, packed ? wrap : undefined);
      if (!packed) {
        const n = rng.below(ring.size + 1);
        for (let i = 0; i < n; i++) g.dv.setUint16(ring.driver + V.AVAIL_RING + ((availIdx + i) % ring.size) * 2, rng.chance(0.95) ? rng.below(ring.size) : rng.below(0x10000), true);
        // the device must have caught up before the driver may publish a whole ring more
        availIdx = (availIdx + n) & 0xffff;
        g.dv.setUint16(ring.driver + V.AVAIL_IDX, availIdx, true);
      } else if (rng.chance(0.2)) wrap ^= 1;
      const before = card.counters();
      card.doorbell(dev.func, 0);
      expect(() => { card.poll(1024); card.poll(1024); }).not.toThrow();
      const after = card.counters();
      const taken = after.virtio_requests! - before.virtio_requests!;
      const d = (k: string) => after[k]! - before[k]!;
      // every chain taken got a used element, or was dropped (no id to complete) with a counted reason
      expect(d("virtio_used")).toBeLessThanOrEqual(taken);
      expect(d("virtio_used") + d("err_virtio_bad_desc_index") + d("err_virtio_packed_bad_id")).toBeGreaterThanOrEqual(taken);
      expect(card.inFlight()).toBe(0);
      expect(card.fw.virtioQueueState(dev.func, 0)).toBe(V.QS_READY);
    }
    expect(Buffer.compare(other.u8, otherBefore)).toBe(0);
    const c = card.counters();
    expect(c.virtio_requests).toBeGreaterThan(packed ? 300 : 1000);
    expect(c.requests_completed).toBeGreaterThan(0); // some random requests were valid
    expect(Object.keys(card.errors()).length).toBeGreaterThan(5);
  });
});
