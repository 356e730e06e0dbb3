import { describe, it, expect, beforeAll } from "vitest";
import { card, writeDesc, txDrain, expectedFrame, pattern, W } from "./setup.js";
import type { Card } from "../../host/card.js";

// Independent parse of the fields segmentation decides.
function fields(f: Uint8Array) {
  const ipLen = (f[16]! << 8) | f[17]!;
  const op = f[42]!;
  const pad = (f[43]! >> 4) & 3;
  const ackreq = (f[50]! & 0x80) !== 0;
  const psn = (f[51]! << 16) | (f[52]! << 8) | f[53]!;
  const ext = ({ 0x06: 16, 0x0a: 16, 0x03: 4, 0x05: 4, 0x09: 4, 0x0b: 20, 0x0d: 4, 0x0f: 4, 0x10: 4 } as Record<number, number>)[op] ?? 0;
  const plen = ipLen - 20 - 8 - 12 - ext - pad - 4;
  return { op, pad, ackreq, psn, plen, ext, payload: f.subarray(54 + ext, 54 + ext + plen) };
}

describe("segmentation by path MTU", () => {
  let c: Card;
  beforeAll(async () => { c = await card(); });

  const classes: [string, number, number[]][] = [
    ["SEND", W.OpClass.SEND, [0x00, 0x01, 0x02, 0x04]],
    ["RDMA WRITE", W.OpClass.WRITE, [0x06, 0x07, 0x08, 0x0a]],
    ["RDMA READ response", W.OpClass.READ_RESPONSE, [0x0d, 0x0e, 0x0f, 0x10]],
  ];
  for (const mtu of [256, 512, 1024, 2048, 4096]) {
    for (const [name, cls, [FIRST, MIDDLE, LAST, ONLY]] of classes) {
      it(`cuts ${name} messages at MTU ${mtu} into FIRST/MIDDLE/LAST or ONLY with pad counts and consecutive PSNs`, () => {
        for (const len of [0, 1, mtu - 1, mtu, mtu + 1, 2 * mtu, 3 * mtu + 3, 16384 + 2]) {
          const data = pattern(len, len + mtu);
          const psn0 = 0xfffffe; // wraps inside most messages
          const d = writeDesc(c, { opcode: cls, payload: data, mtu, psn: psn0, ackreq: true, va: 0x4000n, rkey: 0x99, aeth: 0x1f000003 });
          const n = Math.max(1, Math.ceil(len / mtu));
          expect(c.fw.rdmaSegCount(len, mtu)).toBe(n);
          expect(c.fw.rdmaTxMessage(d), `len ${len}`).toBe(n);
          expect(c.dv.getUint32(d + W.TXD_PSN, true)).toBe((psn0 + n) & 0xffffff);
          const frames = txDrain(c);
          expect(frames.length).toBe(n);
          const got = frames.map(fields);
          const ops = got.map((g) => g.op);
          expect(ops, `len ${len}`).toEqual(n === 1 ? [ONLY] : [FIRST, ...new Array(n - 2).fill(MIDDLE), LAST]);
          got.forEach((g, i) => {
            expect(g.psn).toBe((psn0 + i) & 0xffffff);
            expect(g.plen).toBe(i < n - 1 ? mtu : len - (n - 1) * mtu);
            expect(g.pad).toBe((4 - (g.plen % 4)) % 4);
            expect(g.ackreq).toBe(cls !== W.OpClass.READ_RESPONSE && i === n - 1); // responses never ask for an ACK
          });
          // The payloads put back together are the message.
          const joined = new Uint8Array(len);
          let at = 0;
          for (const g of got) { joined.set(g.payload, at); at += g.plen; }
          expect(Buffer.compare(Buffer.from(joined), Buffer.from(data))).toBe(0);
          // Byte-exact against the independent encoder, RETH with the whole length on the first.
          frames.forEach((f, i) => {
            const g = got[i]!;
            const want = expectedFrame({ opcode: g.op, dqp: 0x11, va: 0x4000n, rkey: 0x99, aeth: 0x1f000003 }, g.op, g.psn, g.ackreq, g.payload, len);
            expect(Buffer.from(f).equals(Buffer.from(want)), `packet ${i} of ${len}`).toBe(true);
          });
        }
      });
    }
  }

  it("puts ImmDt on the last packet of a SEND or WRITE with immediate", () => {
    const d = writeDesc(c, { opcode: W.OpClass.WRITE, payload: pattern(600), mtu: 256, immFlag: true, imm: 0x0a0b0c0d });
    expect(c.fw.rdmaTxMessage(d)).toBe(3);
    const f = txDrain(c).map(fields);
    expect(f.map((g) => g.op)).toEqual([0x06, 0x07, 0x09]);
    const d2 = writeDesc(c, { opcode: W.OpClass.SEND, payload: pattern(6), mtu: 256, immFlag: true, imm: 1 });
    expect(c.fw.rdmaTxMessage(d2)).toBe(1);
    expect(txDrain(c).map(fields).map((g) => g.op)).toEqual([0x05]);
  });

  it("resends a message from packet k with the same PSNs, opcodes and bytes (go-back-N)", () => {
    const data = pattern(5 * 512 - 7, 9);
    const base = { opcode: W.OpClass.WRITE, payload: data, mtu: 512, psn: 0xfffffd, ackreq: true, va: 0x9000n, rkey: 3 };
    expect(c.fw.rdmaTxMessage(writeDesc(c, base))).toBe(5);
    const all = txDrain(c);
    const d = writeDesc(c, { ...base, fromPkt: 2 });
    expect(c.fw.rdmaTxMessage(d)).toBe(3);
    expect(c.dv.getUint32(d + W.TXD_PSN, true)).toBe((0xfffffd + 5) & 0xffffff);
    expect(txDrain(c).map((f) => Buffer.from(f).toString("hex"))).toEqual(all.slice(2).map((f) => Buffer.from(f).toString("hex")));
    const before = c.counters().err_rdma_tx_bad_desc!;
    expect(c.fw.rdmaTxMessage(writeDesc(c, { ...base, fromPkt: 5 })) >>> 0).toBe(0xffffffff);
    expect(c.counters().err_rdma_tx_bad_desc).toBe(before + 1);
  });

  it("refuses a bad MTU or class, and a message the TX ring cannot hold whole, counting each", () => {
    const before = c.counters();
    expect(c.fw.rdmaTxMessage(writeDesc(c, { opcode: W.OpClass.SEND, payload: pattern(10), mtu: 1500 })) >>> 0).toBe(0xffffffff);
    expect(c.fw.rdmaTxMessage(writeDesc(c, { opcode: W.OpClass.ACK, payload: pattern(10), mtu: 1024 })) >>> 0).toBe(0xffffffff);
    // 1024 slots: fill 1000 of them, then a 100-packet message must not go out in part.
    const d = writeDesc(c, { opcode: W.OpClass.SEND, payload: pattern(1000 * 256), mtu: 256 });
    expect(c.fw.rdmaTxMessage(d)).toBe(1000);
    const big = writeDesc(c, { opcode: W.OpClass.SEND, payload: pattern(100 * 256), mtu: 256 });
    expect(c.fw.rdmaTxMessage(big) >>> 0).toBe(0xffffffff);
    const after = c.counters();
    expect(after.err_rdma_tx_bad_desc! - before.err_rdma_tx_bad_desc!).toBe(2);
    expect(after.err_rdma_tx_ring_full! - before.err_rdma_tx_ring_full!).toBe(1);
    expect(txDrain(c).length).toBe(1000);
  });
});
