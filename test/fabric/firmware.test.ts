// Two firmware instances on one fabric: what one card's transmit path puts in its TX ring
// arrives in the other's RX ring and passes its receive path; a frame the link corrupted
// is dropped there unless the flipped bit is one the ICRC does not cover (and no other check
// reads): then the frame is accepted with its transport headers and payload intact.
import { describe, it, expect } from "vitest";
import * as M from "../../assembly/memmap.js";
import { Fabric } from "../../host/fabric/fabric.js";
import { Counter } from "../../assembly/counters.js";
import { card, writeDesc, rxLog, expectedFrame } from "../rdma/setup.js";
import type { Card } from "../../host/card.js";

/**
 * Bytes of an IPv4 RoCEv2 frame that neither the ICRC nor the IP header checksum covers
 * (Annex A17.3.3): the Ethernet addresses, the UDP checksum, the BTH's FECN/BECN byte.
 */
const UNCOVERED = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 40, 41, 46]);

/** The frames waiting in c's RX ring, in order, without taking them. */
function rxPeek(c: Card): Uint8Array[] {
  const prod = c.dv.getUint32(M.NET_RX_CTRL, true);
  const out: Uint8Array[] = [];
  for (let i = c.dv.getUint32(M.NET_RX_CTRL + 4, true); i !== prod; i = (i + 1) >>> 0) {
    const s = M.NET_RX_SLOTS + (i % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE;
    out.push(c.u8.slice(s + M.NET_SLOT_HDR, s + M.NET_SLOT_HDR + c.dv.getUint32(s, true)));
  }
  return out;
}

describe("firmware to firmware over the fabric", () => {
  it("delivers every frame of a lossy, reordering, duplicating, corrupting link exactly as counted; the receiver drops every corrupted frame except bit flips outside the ICRC", async () => {
    const a = await card(), b = await card();
    const f = new Fabric({ seed: 11 });
    const link = f.connect({ card: a, port: 0 }, { card: b, port: 0 }, { gbps: 100, latencyNs: 2000, loss: 0.02, reorder: 0.05, duplicate: 0.02, corrupt: 0.05 });
    const N = 2000;
    const payload = new Uint8Array(256).map((_, i) => i);
    const log: ReturnType<typeof rxLog> = [];
    const got: Uint8Array[] = [];
    let now = 0;
    for (let sent = 0; sent < N || f.inFlight() > 0; now += 2000) {
      for (let k = 0; k < 50 && sent < N; k++, sent++) {
        expect(a.fw.rdmaTxPacket(writeDesc(a, { opcode: 0x04, dqp: 0x11, psn: sent, payload }))).not.toBe(0xffffffff);
      }
      f.step(now);
      got.push(...rxPeek(b));
      b.fw.rdmaRxPoll(1024);
      log.push(...rxLog(b, (n) => Counter[n]!));
    }
    const s = link.stats().ab;
    expect(s.frames).toBe(N);
    expect(s.delivered).toBe(N - s.lost + s.duplicated);
    expect(log).toHaveLength(s.delivered);
    expect(got).toHaveLength(log.length);
    // Against the frame the spec says the firmware sent (an independent encoder, test/rdma/setup.ts):
    let changedAccepted = 0, dropped = 0;
    log.forEach((l, i) => {
      const want = expectedFrame({ opcode: 0x04, dqp: 0x11 }, 0x04, l.psn, false, payload, 256);
      const diff: number[] = [];
      for (let k = 0; k < want.length; k++) if (got[i]![k] !== want[k]) diff.push(k);
      if (l.accepted) {
        expect(diff.every((k) => UNCOVERED.has(k)), `accepted frame ${l.frame} differs at ${diff}`).toBe(true);
        if (diff.length) changedAccepted++;
      } else {
        expect(diff.length, `dropped frame ${l.frame} (${l.reason}) is intact`).toBeGreaterThan(0);
        dropped++;
      }
    });
    // Every corruption is one of those: dropped, or accepted with an uncovered bit flipped
    // (a corrupted frame that was also duplicated is seen twice).
    expect(s.corrupted).toBeGreaterThan(50);
    expect(dropped + changedAccepted).toBeGreaterThanOrEqual(s.corrupted);
    expect(dropped + changedAccepted).toBeLessThanOrEqual(2 * s.corrupted);
    expect(b.counters().err_rdma_bad_icrc).toBeGreaterThan(dropped / 2);
    // Every PSN that was not lost arrived intact at least once, unless its only copy was corrupted.
    const good = new Set(log.filter((l) => l.accepted).map((l) => l.psn));
    expect(good.size).toBeGreaterThanOrEqual(N - s.lost - s.corrupted);
  });
});
