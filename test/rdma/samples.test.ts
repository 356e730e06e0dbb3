import { describe, it, expect } from "vitest";
import { Counter } from "../../assembly/counters.js";
import { sampleFrames, pcapOf } from "./samples.js";
import { card, rxPush, rxLog, icrcRef } from "./setup.js";

describe("sample frames for captures", () => {
  it("covers the CM datagram, NVMe-oF capsules, WRITE/READ in every position and ACK/NAK, each accepted on receive", async () => {
    const frames = await sampleFrames();
    expect(frames.map((f) => f[42])).toEqual([
      0x64, 0x04, 0x06, 0x07, 0x08, 0x04, 0x11, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x11,
      0x00, 0x01, 0x02, 0x0a, 0x0b, 0x05, 0x17, 0x11, 0x64,
    ]);
    // The CM MAD goes to QP1 with the GSI Q_Key; the command capsule is a 64-byte SEND.
    expect(Array.from(frames[0]!.subarray(46, 50))).toEqual([0, 0, 0, 1]); // BTH dest QP
    expect(Array.from(frames[0]!.subarray(54, 58))).toEqual([0x80, 0x01, 0x00, 0x00]); // DETH Q_Key
    expect((frames[1]![16]! << 8 | frames[1]![17]!) - 20 - 8 - 12 - 4).toBe(64);
    for (const f of frames) {
      const ipLen = (f[16]! << 8) | f[17]!;
      expect(new DataView(f.buffer).getUint32(14 + ipLen - 4, true)).toBe(icrcRef(f));
      expect(f[6]! & 1).toBe(0); // unicast source MAC
    }
    const c = await card();
    rxPush(c, frames);
    expect(c.fw.rdmaRxPoll(100)).toBe(frames.length);
    const log = rxLog(c, (n) => Counter[n]!);
    expect(log.every((l) => l.accepted && l.icrcOk)).toBe(true);
    expect(log.map((l) => l.frame)).toEqual(frames.map((_, i) => i + 1));
    const pcap = pcapOf(frames);
    expect(new DataView(pcap.buffer).getUint32(0, true)).toBe(0xa1b23c4d);
    expect(pcap.length).toBe(24 + frames.reduce((a, f) => a + 16 + f.length, 0));
  });
});
