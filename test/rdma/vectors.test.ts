// ICRC against frames computed outside this project: a CNP captured from a ConnectX-4 Lx and a
// UC SEND ONLY whose ICRC Scapy's RoCE layer computes, both published in Scapy's RoCE tests
// (test/contrib/roce.uts). The bytes are public test data; the checks are ours.
import { describe, it, expect } from "vitest";
import { Counter } from "../../assembly/counters.js";
import { card, rxPush, rxLog, icrcRef, W } from "./setup.js";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((x) => parseInt(x, 16)));

// CNP (opcode 0x81, BECN set in BTH byte 4) as captured on the wire, ICRC 82 fd 00 2a.
const CNP = hex(`e41d2dab2bc2 7cfe90643b32 0800
  45c2 003c 718c 4000 4011 9161 0a001101 0a001201
  0000 12b7 0028 0000
  81 00 ffff 40 000118 00 000000
  00000000000000000000000000000000
  82fd002a`);
// UC SEND ONLY, MigReq, pad 2, TOS 1, UDP checksum set: ICRC 78 f3 53 f3.
const UC = hex(`248a07a8fa22 248a07a8fa22 0800
  45 01 0040 0478 4000 40 11 b4d5 c0a80007 c0a80007
  c000 12b7 002c aca2
  24 60 ffff 00 0000d3 00 cf1710
  4630818be28935d90e9a955054 01be885e5000 00
  78f353f3`);

describe("ICRC against frames from outside the project", () => {
  for (const [name, f, wire] of [["CNP captured on a ConnectX-4 Lx", CNP, [0x82, 0xfd, 0x00, 0x2a]], ["UC SEND ONLY (Scapy)", UC, [0x78, 0xf3, 0x53, 0xf3]]] as const) {
    it(`computes the ICRC of the ${name}`, async () => {
      expect(f.length).toBe(14 + ((f[16]! << 8) | f[17]!));
      const c = await card();
      const at = c.guests[0]!.base;
      c.u8.set(f, at);
      const v = c.fw.rdmaIcrc(at, (f[16]! << 8) | f[17]!) >>> 0;
      expect([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]).toEqual(wire);
      expect(icrcRef(f)).toBe(v); // and so does the tests' own zlib reference
      // On receive: the ICRC is good; the CNP is typed and accepted, UC is not a transport this
      // layer handles (an unknown opcode, counted).
      rxPush(c, [f]);
      c.fw.rdmaRxPoll(1);
      const [l] = rxLog(c, (n) => Counter[n]!);
      expect(l!.icrcOk).toBe(true);
      expect(l!.reason).toBe(f === CNP ? null : "err_rdma_unknown_opcode");
      if (f === CNP) expect([l!.opcode, l!.cls, l!.dqp, l!.psn, l!.payloadLen]).toEqual([0x81, W.OpClass.CNP, 0x118, 0, 0]);
      expect(l!.flags & W.RXF_BTH).toBeTruthy();
    });
  }
});
