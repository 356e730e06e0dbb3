import { describe, it, expect, beforeAll } from "vitest";
import { Counter } from "../../assembly/counters.js";
import { card, writeDesc, txDrain, expectedFrame, icrcRef, pattern, W, type Desc } from "./setup.js";
import type { Card } from "../../host/card.js";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((x) => parseInt(x, 16)));

describe("RoCEv2 headers and the ICRC", () => {
  let c: Card;
  beforeAll(async () => { c = await card(); });

  it("builds a SEND ONLY byte for byte as written out by hand from the specs", () => {
    const d: Desc = { opcode: W.Op.RC_SEND_ONLY, dqp: 0x000123, psn: 0x00abcd, ackreq: true, payload: Uint8Array.of(1, 2, 3, 4, 5) };
    expect(c.fw.rdmaTxPacket(writeDesc(c, d))).toBe(14 + 20 + 8 + 12 + 8 + 4);
    const [f] = txDrain(c);
    const want = hex(`
      020000000002 020000000001 0800
      45 00 0034 0000 4000 40 11 0000 0a000001 0a000002
      c011 12b7 0020 0000
      04 30 ffff 00 000123 80 00abcd
      0102030405 000000`);
    // IPv4 header checksum (RFC 1071): ones' complement of the folded sum of the other words.
    const ipSum = [0x4500, 0x0034, 0x0000, 0x4000, 0x4011, 0x0a00, 0x0001, 0x0a00, 0x0002].reduce((a, b) => a + b, 0);
    const folded = (ipSum & 0xffff) + (ipSum >>> 16);
    want[24] = (~folded >>> 8) & 0xff; want[25] = ~folded & 0xff;
    expect(Array.from(f!.subarray(0, f!.length - 4))).toEqual(Array.from(want));
    const icrc = icrcRef(f!);
    expect(Array.from(f!.subarray(f!.length - 4))).toEqual([icrc & 0xff, (icrc >>> 8) & 0xff, (icrc >>> 16) & 0xff, icrc >>> 24]);
  });

  const cases: [string, Desc, number][] = [
    ["SEND FIRST", { opcode: 0x00, payload: pattern(1024) }, 0],
    ["SEND MIDDLE", { opcode: 0x01, payload: pattern(1024, 2) }, 0],
    ["SEND LAST", { opcode: 0x02, payload: pattern(3, 3), ackreq: true }, 0],
    ["SEND LAST with immediate", { opcode: 0x03, payload: pattern(10), imm: 0xdeadbeef }, 0],
    ["SEND ONLY (NVMe command capsule)", { opcode: 0x04, payload: pattern(64, 4), ackreq: true, seM: W.BTH_SE }, 0],
    ["SEND ONLY with immediate", { opcode: 0x05, payload: pattern(7), imm: 0x01020304 }, 0],
    ["WRITE FIRST", { opcode: 0x06, payload: pattern(256), va: 0x1122334455667788n, rkey: 0xcafe0001, dmaLen: 4096 }, 4096],
    ["WRITE MIDDLE", { opcode: 0x07, payload: pattern(256) }, 0],
    ["WRITE LAST", { opcode: 0x08, payload: pattern(255), ackreq: true }, 0],
    ["WRITE LAST with immediate", { opcode: 0x09, payload: pattern(1), imm: 7 }, 0],
    ["WRITE ONLY", { opcode: 0x0a, payload: pattern(13), va: 0x1000n, rkey: 0x77 }, 13],
    ["WRITE ONLY with immediate", { opcode: 0x0b, payload: pattern(12), va: 0x2000n, rkey: 0x78, imm: 9 }, 12],
    ["READ REQUEST", { opcode: 0x0c, va: 0xfeedface00001000n, rkey: 0x1234, dmaLen: 8192, ackreq: true }, 8192],
    ["READ RESPONSE FIRST", { opcode: 0x0d, payload: pattern(512), aeth: 0x1f000005 }, 0],
    ["READ RESPONSE MIDDLE", { opcode: 0x0e, payload: pattern(512) }, 0],
    ["READ RESPONSE LAST", { opcode: 0x0f, payload: pattern(2), aeth: 0x1f000005 }, 0],
    ["READ RESPONSE ONLY", { opcode: 0x10, payload: pattern(4096), aeth: 0x00000001 }, 0],
    ["ACK", { opcode: 0x11, aeth: 0x1f000042 }, 0],
    ["NAK PSN sequence error", { opcode: 0x11, aeth: (0x60 << 24) | 0x42 }, 0],
    ["RNR NAK", { opcode: 0x11, aeth: (0x2e << 24) | 0x42 }, 0],
    ["ATOMIC ACK", { opcode: 0x12, aeth: 0x1f000001, orig: 0x0102030405060708n }, 0],
    ["CMP SWAP", { opcode: 0x13, va: 0x8000n, rkey: 5, swap: 1n, cmp: 2n }, 0],
    ["FETCH ADD", { opcode: 0x14, va: 0x8008n, rkey: 5, swap: 3n }, 0],
    ["SEND LAST with invalidate", { opcode: 0x16, payload: pattern(40), iethRkey: 0xabcdef01 }, 0],
    ["SEND ONLY with invalidate", { opcode: 0x17, payload: pattern(40), iethRkey: 0xabcdef02 }, 0],
    ["UD SEND ONLY to QP1 (CM MAD)", { opcode: 0x64, dqp: 1, payload: pattern(256, 5), qkey: W.GSI_QKEY, srcQp: 1 }, 0],
    ["UD SEND ONLY with immediate", { opcode: 0x65, dqp: 9, payload: pattern(20), qkey: 0x11, srcQp: 0x123456, imm: 5 }, 0],
    ["CNP", { opcode: 0x81, dqp: 0x118, psn: 0 }, 0],
  ];
  for (const [name, d, dmaLen] of cases) {
    it(`builds ${name} (opcode 0x${d.opcode.toString(16)}) as the spec lays it out, ICRC as zlib computes it`, () => {
      const dd = { dqp: 0xabcdef, psn: 0xfffffe, ...d };
      expect(c.fw.rdmaTxPacket(writeDesc(c, dd))).toBeGreaterThan(0);
      const [f] = txDrain(c);
      const want = expectedFrame(dd, dd.opcode, dd.psn, !!dd.ackreq, dd.payload ?? new Uint8Array(0), dmaLen || (dd.payload?.length ?? 0));
      expect(Buffer.from(f!).toString("hex")).toBe(Buffer.from(want).toString("hex"));
    });
  }

  it("has one table entry per opcode with the header lengths of IBTA table 38, and nothing else", () => {
    const want: Record<number, number> = {
      0x00: 12, 0x01: 12, 0x02: 12, 0x03: 16, 0x04: 12, 0x05: 16, 0x06: 28, 0x07: 12, 0x08: 12, 0x09: 16, 0x0a: 28, 0x0b: 32,
      0x0c: 28, 0x0d: 16, 0x0e: 12, 0x0f: 16, 0x10: 16, 0x11: 16, 0x12: 24, 0x13: 40, 0x14: 40, 0x16: 16, 0x17: 16, 0x64: 20, 0x65: 24, 0x81: 28,
    };
    for (let op = 0; op < 256; op++) {
      const e = c.fw.rdmaOpcodeEntry(op);
      const valid = c.dv.getUint8(e + W.OPT_VALID) === 1;
      expect(valid, `opcode 0x${op.toString(16)}`).toBe(op in want);
      if (valid) expect(c.dv.getUint8(e + W.OPT_HDRLEN), `opcode 0x${op.toString(16)}`).toBe(want[op]);
    }
    const flags = (op: number) => c.dv.getUint16(c.fw.rdmaOpcodeEntry(op) + W.OPT_FLAGS, true);
    expect(flags(0x64) & W.OPF_UD).toBeTruthy();
    expect(flags(0x64) & W.OPF_RC).toBeFalsy();
    expect(flags(0x04) & W.OPF_RC).toBeTruthy();
    expect(flags(0x0c) & W.OPF_PAYLOAD).toBeFalsy();
    expect(c.dv.getUint8(c.fw.rdmaOpcodeEntry(0x0d) + W.OPT_POS)).toBe(W.Pos.FIRST);
    expect(c.dv.getUint8(c.fw.rdmaOpcodeEntry(0x0e) + W.OPT_POS)).toBe(W.Pos.MIDDLE);
    expect(c.dv.getUint8(c.fw.rdmaOpcodeEntry(0x0b) + W.OPT_IMMDT)).toBe(28);
  });

  it("refuses an unknown opcode or a payload on an opcode without one, and counts it", () => {
    const before = c.counters().err_rdma_tx_bad_desc!;
    expect(c.fw.rdmaTxPacket(writeDesc(c, { opcode: 0x15 })) >>> 0).toBe(0xffffffff);
    expect(c.fw.rdmaTxPacket(writeDesc(c, { opcode: 0x11, payload: pattern(4) })) >>> 0).toBe(0xffffffff);
    expect(c.counters().err_rdma_tx_bad_desc).toBe(before + 2);
    expect(txDrain(c)).toEqual([]);
    expect(Counter[Counter.err_rdma_tx_bad_desc]).toBe("err_rdma_tx_bad_desc");
  });
});
