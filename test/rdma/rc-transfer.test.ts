// RC transport between two firmware cards over a fabric: SEND, RDMA WRITE and RDMA READ of
// 0, 1, MTU and many-MTU bytes at several path MTUs, data checked byte for byte, completions
// on both sides (requester: one per work request; responder: one per SEND into a posted buffer).
import { describe, it, expect } from "vitest";
import { pair, run, postSend, postRecv, poll, ram, fill, counters, R, type Cqe } from "./rc-setup.js";
import { pattern } from "./setup.js";

describe("RC transfers between two cards", () => {
  for (const mtu of [256, 1024, 4096]) {
    it(`SEND, WRITE and READ of 0, 1, MTU and many-MTU bytes at path MTU ${mtu}`, async () => {
      // PSNs start just below the 24-bit wrap so the messages cross it.
      const p = await pair({ mtu, psnA: 0xffffff - 20, psnB: 0xfffff0 });
      const { a, b } = p;
      const sizes = [0, 1, mtu, 7 * mtu + 3];
      let wrid = 1;
      const aDone: Cqe[] = [], bDone: Cqe[] = [];
      for (const len of sizes) {
        const src = pattern(len, len + mtu);
        // SEND a → b into a posted receive buffer.
        fill(a, 0, src);
        expect(postRecv(b, [{ wrid: 900 + len, off: 0x40000, len: 8 * mtu }])).toBe(1);
        expect(postSend(a, [{ op: R.WrOp.SEND, wrid: wrid++, off: 0, len }])).toBe(1);
        run(p, () => (aDone.push(...poll(a)), bDone.push(...poll(b)), aDone.length === wrid - 1));
        expect(ram(b, 0x40000, len)).toEqual(src);
        expect(bDone.at(-1)).toMatchObject({ wrid: 900 + len, status: R.WcStatus.SUCCESS, opcode: R.WcOp.RECV, len });
        // RDMA WRITE a → b's MR at an offset.
        const w = pattern(len, len + 7);
        fill(a, 0x10000, w);
        expect(postSend(a, [{ op: R.WrOp.WRITE, wrid: wrid++, off: 0x10000, len, rkey: b.key, roff: 0x80000 + 5 }])).toBe(1);
        run(p, () => (aDone.push(...poll(a)), aDone.length === wrid - 1));
        expect(ram(b, 0x80000 + 5, len)).toEqual(w);
        // RDMA READ from b's MR into a's.
        const r = pattern(len, len + 99);
        fill(b, 0xa0000 + 3, r);
        expect(postSend(a, [{ op: R.WrOp.READ, wrid: wrid++, off: 0x20000, len, rkey: b.key, roff: 0xa0000 + 3 }])).toBe(1);
        run(p, () => (aDone.push(...poll(a)), aDone.length === wrid - 1));
        expect(ram(a, 0x20000, len)).toEqual(r);
      }
      expect(aDone.map((c) => c.wrid)).toEqual(Array.from({ length: wrid - 1 }, (_, i) => i + 1));
      expect(aDone.every((c) => c.status === R.WcStatus.SUCCESS)).toBe(true);
      expect(aDone.map((c) => c.opcode)).toEqual(sizes.flatMap(() => [R.WcOp.SEND, R.WcOp.RDMA_WRITE, R.WcOp.RDMA_READ]));
      expect(bDone).toHaveLength(sizes.length);
      const ca = counters(a), cb = counters(b);
      for (const [k, v] of [...Object.entries(ca), ...Object.entries(cb)]) if (k.startsWith("err_")) expect(v, k).toBe(0);
      expect(cb.rdma_rc_acks_sent).toBeGreaterThan(0);
      expect(cb.rdma_rc_read_responses).toBe(sizes.length);
      expect(ca.rdma_rc_timeouts).toBe(0);
    });
  }

  it("SEND and WRITE with immediate data complete on the responder with the immediate; many posted at once stream in order", async () => {
    const p = await pair({ mtu: 512 });
    const { a, b } = p;
    const N = 40;
    postRecv(b, Array.from({ length: 48 }, (_, i) => ({ wrid: 1000 + i, off: i * 2048, len: 2048 })));
    const msgs = Array.from({ length: N }, (_, i) => pattern(1 + ((i * 331) % 2000), i));
    msgs.forEach((m, i) => fill(a, 0x80000 + i * 2048, m));
    expect(postSend(a, msgs.map((m, i) => ({ op: i % 2 ? R.WrOp.SEND_IMM : R.WrOp.SEND, wrid: i, off: 0x80000 + i * 2048, len: m.length, imm: 0xabc00000 + i })))).toBe(N);
    expect(postSend(a, [{ op: R.WrOp.WRITE_IMM, wrid: 99, off: 0, len: 10, rkey: b.key, roff: 0xf0000, imm: 0x12345678 }])).toBe(1);
    const aDone: Cqe[] = [], bDone: Cqe[] = [];
    run(p, () => (aDone.push(...poll(a)), bDone.push(...poll(b)), aDone.length === N + 1 && bDone.length === N + 1));
    expect(aDone.map((c) => c.wrid)).toEqual([...Array.from({ length: N }, (_, i) => i), 99]);
    expect(bDone.slice(0, N).map((c) => [c.wrid, c.len, c.imm])).toEqual(msgs.map((m, i) => [1000 + i, m.length, i % 2 ? 0xabc00000 + i : null]));
    expect(bDone[N]).toMatchObject({ wrid: 1000 + N, opcode: R.WcOp.RECV_RDMA_WITH_IMM, imm: 0x12345678 });
    msgs.forEach((m, i) => expect(ram(b, i * 2048, m.length)).toEqual(m));
    expect(ram(b, 0xf0000, 10)).toEqual(ram(a, 0, 10));
  });
});
