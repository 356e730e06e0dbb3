import { describe, it, expect, beforeEach } from "vitest";
import { Counter } from "../../assembly/counters.js";
import { card, writeDesc, txDrain, rxPush, rxLog, pattern, inetChecksum, icrcRef, W, M, type Desc } from "./setup.js";
import type { Card } from "../../host/card.js";

const name = (n: number) => Counter[n]!;

function build(c: Card, d: Desc): Uint8Array {
  expect(c.fw.rdmaTxPacket(writeDesc(c, d))).toBeGreaterThan(0);
  return txDrain(c)[0]!;
}
/** Rewrite the IPv4 checksum and the ICRC after a deliberate header edit. */
function reseal(f: Uint8Array): Uint8Array {
  f[24] = 0; f[25] = 0;
  const cs = inetChecksum(f.subarray(14, 34));
  f[24] = cs >>> 8; f[25] = cs & 0xff;
  const ipLen = (f[16]! << 8) | f[17]!;
  if (ipLen >= 44 && 14 + ipLen <= f.length) {
    const v = icrcRef(f);
    new DataView(f.buffer, f.byteOffset).setUint32(14 + ipLen - 4, v, true);
  }
  return f;
}
function receive(c: Card, frames: Uint8Array[]) {
  rxPush(c, frames);
  expect(c.fw.rdmaRxPoll(4096)).toBe(frames.length);
  return rxLog(c, name);
}

describe("receive path: parse, type, ICRC check, result log", () => {
  let c: Card;
  beforeEach(async () => { c = await card(); });

  it("accepts and types every packet it sent, one log entry per frame in order", () => {
    const ds: Desc[] = [
      { opcode: 0x04, dqp: 0x12, psn: 5, payload: pattern(64), ackreq: true },
      { opcode: 0x06, dqp: 0x12, psn: 6, payload: pattern(1024), va: 1n, rkey: 2, dmaLen: 2048 },
      { opcode: 0x08, dqp: 0x12, psn: 7, payload: pattern(1021) },
      { opcode: 0x0c, dqp: 0x12, psn: 8, va: 1n, rkey: 2, dmaLen: 4096 },
      { opcode: 0x10, dqp: 0x13, psn: 9, payload: pattern(4096), aeth: 1 },
      { opcode: 0x11, dqp: 0x13, psn: 10, aeth: 0x1f000001 },
      { opcode: 0x64, dqp: 1, psn: 0xffffff, payload: pattern(256), qkey: W.GSI_QKEY, srcQp: 1 },
    ];
    const log = receive(c, ds.map((d) => build(c, d)));
    expect(log.map((l) => [l.frame, l.opcode, l.pos, l.dqp, l.psn, l.payloadLen, l.pad, l.icrcOk, l.accepted, l.reason])).toEqual([
      [1, 0x04, W.Pos.ONLY, 0x12, 5, 64, 0, true, true, null],
      [2, 0x06, W.Pos.FIRST, 0x12, 6, 1024, 0, true, true, null],
      [3, 0x08, W.Pos.LAST, 0x12, 7, 1021, 3, true, true, null],
      [4, 0x0c, W.Pos.NONE, 0x12, 8, 0, 0, true, true, null],
      [5, 0x10, W.Pos.ONLY, 0x13, 9, 4096, 0, true, true, null],
      [6, 0x11, W.Pos.NONE, 0x13, 10, 0, 0, true, true, null],
      [7, 0x64, W.Pos.ONLY, 1, 0xffffff, 256, 0, true, true, null],
    ]);
    expect(log[0]!.flags & W.RXF_ACKREQ).toBeTruthy();
    expect(log.map((l) => l.cls)).toEqual([W.OpClass.SEND, W.OpClass.WRITE, W.OpClass.WRITE, W.OpClass.READ_REQUEST, W.OpClass.READ_RESPONSE, W.OpClass.ACK, W.OpClass.SEND]);
    const k = c.counters();
    expect(k.rdma_rx_frames).toBe(7);
    expect(k.rdma_rx_accepted).toBe(7);
    // The frames left the RX ring.
    expect(c.dv.getUint32(M.NET_RX_CTRL + 4, true)).toBe(7);
  });

  it("drops every malformed frame with its own reason, and never with another's", () => {
    const good = () => build(c, { opcode: 0x04, dqp: 0x20, psn: 1, payload: pattern(64) });
    const edit = (fn: (f: Uint8Array) => void, seal = true) => { const f = good(); fn(f); return seal ? reseal(f) : f; };
    const cases: [string, Uint8Array][] = [
      ["err_rdma_runt", good().subarray(0, 57)],
      ["err_rdma_oversized", new Uint8Array(M.NET_FRAME_MAX + 1)],
      ["err_rdma_bad_ethertype", edit((f) => { f[12] = 0x86; f[13] = 0xdd; })],
      ["err_rdma_bad_ip_version", edit((f) => { f[14] = 0x65; })],
      ["err_rdma_bad_ihl", edit((f) => { f[14] = 0x46; })],
      ["err_rdma_bad_ip_checksum", edit((f) => { f[24] ^= 1; }, false)],
      ["err_rdma_bad_ip_length", edit((f) => { f[17] += 8; })],
      ["err_rdma_ip_fragment", edit((f) => { f[20] = 0x20; })],
      ["err_rdma_not_udp", edit((f) => { f[23] = 6; })],
      ["err_rdma_bad_udp_port", edit((f) => { f[36] = 0x12; f[37] = 0xb8; })],
      ["err_rdma_bad_udp_length", edit((f) => { f[39] -= 4; })],
      ["err_rdma_bad_icrc", edit((f) => { f[60] ^= 0x40; }, false)],
      ["err_rdma_bad_icrc", edit((f) => { f[f.length - 1] ^= 1; }, false)],
      ["err_rdma_bad_tver", edit((f) => { f[43] |= 1; })],
      ["err_rdma_unknown_opcode", edit((f) => { f[42] = 0x15; })],
      ["err_rdma_unknown_opcode", edit((f) => { f[42] = 0x24; })], // UC SEND ONLY: a transport this layer does not handle
      ["err_rdma_bad_pad", edit((f) => { f[17] -= 1; f[39] -= 1; })], // payload + pad not a multiple of 4
      ["err_rdma_bad_pad", (() => { const f = build(c, { opcode: 0x11, aeth: 1 }); f[43] |= 0x10; return reseal(f); })()], // pad on an ACK
      ["err_rdma_bad_length", edit((f) => { f[42] = 0x0c; })], // a READ REQUEST carries no payload; this one has bytes left over
      ["err_rdma_bad_length", (() => { const f = build(c, { opcode: 0x11, aeth: 1 }); f[42] = 0x06; return reseal(f); })()],
    ];
    const log = receive(c, cases.map(([, f]) => f));
    expect(log.map((l) => l.reason)).toEqual(cases.map(([r]) => r));
    expect(log.every((l) => !l.accepted)).toBe(true);
    const k = c.counters();
    for (const r of new Set(cases.map(([x]) => x))) expect(k[r], r).toBe(cases.filter(([x]) => x === r).length);
    expect(k.rdma_rx_accepted).toBe(0);
    // Where the framing held, the ICRC was computed; only the corrupted ones failed it.
    expect(log.filter((l) => (l.flags & W.RXF_ICRC_CHECKED) && !l.icrcOk).length).toBe(2);
  });

  it("keeps a frame number across batches and can skip the ICRC check and the log", () => {
    const f = build(c, { opcode: 0x04, payload: pattern(8) });
    receive(c, [f, f]);
    expect(receive(c, [f]).map((l) => l.frame)).toEqual([3]);
    const bad = Uint8Array.from(f); bad[bad.length - 1] ^= 0xff;
    c.fw.rdmaSetFlags(W.RCF_NO_ICRC_CHECK);
    const [l] = receive(c, [bad]);
    expect(l!.accepted).toBe(true);
    expect(l!.flags & W.RXF_ICRC_CHECKED).toBe(0);
    c.fw.rdmaSetFlags(W.RCF_NO_LOG);
    rxPush(c, [f]);
    expect(c.fw.rdmaRxPoll(10)).toBe(1);
    expect(rxLog(c, name)).toEqual([]);
    expect(c.counters().rdma_rx_accepted).toBe(5);
  });

  it("takes no more than the budget and leaves the rest for the next poll; a corrupt ring is counted, not read", () => {
    const f = build(c, { opcode: 0x04, payload: pattern(8) });
    rxPush(c, [f, f, f]);
    expect(c.fw.rdmaRxPoll(2)).toBe(2);
    expect(c.fw.rdmaRxPoll(2)).toBe(1);
    expect(c.fw.rdmaRxPoll(2)).toBe(0);
    c.dv.setUint32(M.NET_RX_CTRL, c.dv.getUint32(M.NET_RX_CTRL + 4, true) + M.NET_RING_ENTRIES + 5, true);
    expect(c.fw.rdmaRxPoll(2000)).toBe(0);
    expect(c.counters().err_rdma_rx_ring_corrupt).toBe(1);
  });
});

describe("sequence checks on a connected QP", () => {
  let c: Card;
  const QPN = 7;
  beforeEach(async () => {
    c = await card();
    expect(c.fw.rdmaQpModify(QPN, 1, W.Transport.RC, 0, 0)).toBe(0);
    expect(c.fw.rdmaQpModify(QPN, 2, 1024, 0x99, 0xfffffe)).toBe(0); // RTR, expected PSN just before the wrap
    expect(c.fw.rdmaQpModify(QPN, 3, 7, 7, 0x100)).toBe(0);
  });
  const pkt = (op: number, psn: number, len: number, extra: Desc = { opcode: 0 }) =>
    build(c, { ...extra, opcode: op, dqp: QPN, psn, payload: pattern(len) });

  it("accepts FIRST/MIDDLE/LAST across the 24-bit PSN wrap, and flags out-of-order, duplicate, wrong-length and wrong-sequence packets", () => {
    const log = receive(c, [
      pkt(0x00, 0xfffffe, 1024), // FIRST
      pkt(0x01, 0xffffff, 1024), // MIDDLE
      pkt(0x02, 0x000000, 1), // LAST, after the wrap
      pkt(0x04, 0x000000, 8), // duplicate of the last PSN
      pkt(0x04, 0x000002, 8), // ahead: PSN sequence error
      pkt(0x01, 0x000001, 1024), // MIDDLE with no message open
      pkt(0x00, 0x000001, 1000), // FIRST shorter than the MTU
      pkt(0x04, 0x000001, 1025), // ONLY longer than the MTU
      pkt(0x04, 0x000001, 0), // zero-length ONLY is fine
      pkt(0x64, 0x000002, 8, { opcode: 0, qkey: 1 }), // UD opcode on an RC QP
    ]);
    expect(log.map((l) => l.reason)).toEqual([
      null, null, null, "rdma_rx_duplicate", "err_rdma_psn_out_of_seq", "err_rdma_opcode_seq", "err_rdma_bad_length",
      "err_rdma_bad_length", null, "err_rdma_wrong_transport",
    ]);
  });

  it("advances the expected PSN by the response packets of a READ REQUEST", () => {
    const log = receive(c, [
      build(c, { opcode: 0x0c, dqp: QPN, psn: 0xfffffe, va: 0n, rkey: 1, dmaLen: 3000 }), // 3 responses at MTU 1024
      pkt(0x04, 0x000001, 4),
    ]);
    expect(log.map((l) => l.reason)).toEqual([null, null]);
  });

  it("checks read responses against the requester's PSN stream", () => {
    const log = receive(c, [pkt(0x0d, 0x100, 1024, { opcode: 0, aeth: 0 }), pkt(0x0f, 0x102, 5, { opcode: 0, aeth: 0 }), pkt(0x0f, 0x101, 5, { opcode: 0, aeth: 0 })]);
    expect(log.map((l) => l.reason)).toEqual([null, "err_rdma_psn_out_of_seq", null]);
  });

  it("drops packets for a QP in INIT or ERR", () => {
    expect(c.fw.rdmaQpModify(9, 1, W.Transport.RC, 0, 0)).toBe(0);
    expect(c.fw.rdmaQpModify(QPN, 4, 0, 0, 0)).toBe(0);
    const log = receive(c, [build(c, { opcode: 0x04, dqp: 9, payload: pattern(4) }), pkt(0x04, 0xfffffe, 4)]);
    expect(log.map((l) => l.reason)).toEqual(["err_rdma_bad_qp", "err_rdma_bad_qp"]);
  });
});

describe("datagram QPs and the result log", () => {
  it("checks the Q_Key of a UD QP: the GSI key on QP1 passes, another is dropped", async () => {
    const c = await card();
    expect(c.fw.rdmaQpModify(1, 1, W.Transport.UD, W.GSI_QKEY, 0)).toBe(0);
    expect(c.fw.rdmaQpModify(1, 2, 256, 0, 0)).toBe(0);
    const ud = (qkey: number) => build(c, { opcode: 0x64, dqp: 1, qkey, srcQp: 1, payload: pattern(256) });
    const log = receive(c, [ud(W.GSI_QKEY), ud(0x1234), build(c, { opcode: 0x04, dqp: 1, payload: pattern(4) })]);
    expect(log.map((l) => l.reason)).toEqual([null, "err_rdma_bad_qkey", "err_rdma_wrong_transport"]);
  });

  it("keeps the newest entries when the host does not read the log, counting what it overwrote", async () => {
    const c = await card();
    const f = build(c, { opcode: 0x04, payload: pattern(4) });
    const batch = new Array(M.NET_RING_ENTRIES).fill(f);
    for (let i = 0; i < 5; i++) { rxPush(c, batch); expect(c.fw.rdmaRxPoll(M.NET_RING_ENTRIES)).toBe(M.NET_RING_ENTRIES); }
    expect(c.counters().rdma_rxlog_overrun).toBe(5 * M.NET_RING_ENTRIES - M.RXLOG_ENTRIES);
    const log = rxLog(c, name);
    expect(log.length).toBe(M.RXLOG_ENTRIES);
    expect(log[0]!.frame).toBe(5 * M.NET_RING_ENTRIES - M.RXLOG_ENTRIES + 1);
    expect(log.at(-1)!.frame).toBe(5 * M.NET_RING_ENTRIES);
  });
});

describe("QP state machine and PSN bookkeeping", () => {
  it("allows only the IBTA transitions, each counted", async () => {
    const c = await card();
    const k0 = c.counters().rdma_qp_transitions!;
    expect(c.fw.rdmaQpModify(3, 2, 1024, 0, 0)).toBe(Counter.err_rdma_bad_qp); // RESET -> RTR
    expect(c.fw.rdmaQpModify(3, 3, 0, 0, 0)).toBe(Counter.err_rdma_bad_qp); // RESET -> RTS
    expect(c.fw.rdmaQpModify(3, 1, W.Transport.RC, 0, 0)).toBe(0);
    expect(c.fw.rdmaQpModify(3, 2, 1000, 0, 0)).toBe(Counter.err_rdma_tx_bad_desc); // not a path MTU
    expect(c.fw.rdmaQpModify(3, 3, 0, 0, 0)).toBe(Counter.err_rdma_bad_qp); // INIT -> RTS
    expect(c.fw.rdmaQpModify(3, 2, 4096, 5, 0)).toBe(0);
    expect(c.fw.rdmaQpModify(3, 3, 2, 0, 0xfffffe)).toBe(0);
    expect(c.fw.rdmaQpState(3)).toBe(3);
    expect(c.fw.rdmaQpModify(M.MAX_QPS, 1, 0, 0, 0)).toBe(Counter.err_rdma_bad_qp);
    expect(c.counters().rdma_qp_transitions! - k0).toBe(3);
    // Requester PSNs wrap; cumulative ACKs; go-back-N from the oldest unacknowledged PSN.
    expect(c.fw.rdmaQpTakePsns(3, 3)).toBe(0xfffffe); // 0xfffffe, 0xffffff, 0
    expect(c.fw.rdmaQpAcked(3, 0xffffff)).toBe(2);
    expect(c.fw.rdmaQpAcked(3, 0xffffff)).toBe(0); // stale
    expect(c.fw.rdmaQpAcked(3, 5)).toBe(0); // never sent
    expect(c.fw.rdmaQpRetry(3)).toBe(0);
    expect(c.fw.rdmaQpRetry(3)).toBe(0);
    expect(c.fw.rdmaQpRetry(3) >>> 0).toBe(0xffffffff); // retry count 2 exhausted
    expect(c.fw.rdmaQpState(3)).toBe(4);
    expect(c.fw.rdmaQpModify(3, 0, 0, 0, 0)).toBe(0); // ERR -> RESET
    expect(c.fw.rdmaQpState(3)).toBe(0);
  });

  it("coalesces ACKs: one every N packets, at once when AckReq is set", async () => {
    const c = await card();
    const due = [false, false, false, false, true, false, true].map((ackreq, i) => c.fw.rdmaQpAckDue(4, ackreq && i === 6, 5) ? 1 : 0);
    expect(due).toEqual([0, 0, 0, 0, 1, 0, 1]);
  });
});
