import { describe, it, expect } from "vitest";
import { Counter } from "../../assembly/counters.js";
import { card, writeDesc, txDrain, rxPush, rxLog, pattern, W, M } from "./setup.js";

/** xorshift32, seeded: the same frames every run. */
function rng(seed: number) { let x = seed >>> 0 || 1; return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; }; }

describe("receive path on hostile frames", () => {
  it("never traps, logs every frame once, and accounts for each as accepted, duplicate or one drop reason", async () => {
    const c = await card();
    c.fw.rdmaQpModify(0x12, 1, W.Transport.RC, 0, 0);
    c.fw.rdmaQpModify(0x12, 2, 256, 0, 0);
    const seeds: Uint8Array[] = [];
    for (const [op, len] of [[0x04, 64], [0x06, 256], [0x0c, 0], [0x10, 100], [0x11, 0], [0x64, 40], [0x13, 0]] as const) {
      expect(c.fw.rdmaTxPacket(writeDesc(c, { opcode: op, dqp: op === 0x64 ? 1 : 0x12, payload: pattern(len), dmaLen: 512, qkey: W.GSI_QKEY }))).toBeGreaterThan(0);
      seeds.push(txDrain(c)[0]!);
    }
    const r = rng(1234);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) {
      const kind = r() % 4;
      if (kind === 0) { // random bytes of a random length
        const f = new Uint8Array(r() % 200);
        for (let k = 0; k < f.length; k++) f[k] = r() & 0xff;
        frames.push(f);
      } else { // a valid frame with a few bytes flipped, maybe truncated or extended
        const s = seeds[r() % seeds.length]!;
        const f = new Uint8Array(kind === 3 ? Math.max(0, s.length + (r() % 16) - 8) : s.length);
        f.set(s.subarray(0, Math.min(s.length, f.length)));
        const flips = r() % 3;
        for (let k = 0; k < flips && f.length; k++) f[r() % f.length] ^= 1 << (r() % 8);
        frames.push(f);
      }
    }
    const before = c.counters();
    for (let at = 0; at < frames.length; at += 500) {
      const batch = frames.slice(at, at + 500);
      rxPush(c, batch);
      expect(c.fw.rdmaRxPoll(1000)).toBe(batch.length);
    }
    const log = rxLog(c, (n) => Counter[n]!);
    expect(log.map((l) => l.frame)).toEqual(frames.map((_, i) => i + 1));
    const after = c.counters();
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    const drops = Object.keys(after).filter((k) => k.startsWith("err_rdma_")).reduce((a, k) => a + delta(k), 0);
    expect(delta("rdma_rx_accepted") + delta("rdma_rx_duplicate") + drops).toBe(frames.length);
    expect(log.filter((l) => l.accepted).length).toBe(delta("rdma_rx_accepted"));
    // Something of each kind happened: the mutations reach past the framing checks.
    expect(delta("rdma_rx_accepted")).toBeGreaterThan(0);
    expect(delta("err_rdma_bad_icrc")).toBeGreaterThan(0);
    expect(delta("err_rdma_runt")).toBeGreaterThan(0);
    // Nothing outside the frame rings, the result log and the counters changed the QP table's other entries.
    expect(c.u8.subarray(M.QP_TABLE_BASE, M.QP_TABLE_BASE + 0x12 * M.QP_ENTRY_SIZE).every((b) => b === 0)).toBe(true);
  });
});
