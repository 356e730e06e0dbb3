// The QPs the CM sets up carry traffic: after REQ / REP / RTU the RC engine (rdma/req.ts,
// resp.ts) is enabled on both connected QPs and a SEND and an RDMA WRITE go through with the
// QPNs and PSNs the CM negotiated, completed on both sides.
import { describe, it, expect } from "vitest";
import { pair, connect, run, conn, conns, madAttr, CW, HOST, TARGET, type Pair } from "./cm-pair.js";
import { postSend, postRecv, poll, ram, fill, R, W, VA0, type Side } from "./rc-setup.js";
import { pattern } from "./setup.js";
import type { Card } from "../../host/card.js";
import { Counter } from "../../assembly/counters.js";
import * as M from "../../assembly/memmap.js";

const RAM = 1 << 20; // guest 0 of setup.ts card()

/** Enable the RC engine on a CM-connected QP: its frame addresses, and guest 0's RAM as a region. */
function side(c: Card, qpn: number, me: typeof HOST, peer: typeof HOST): Side {
  expect(c.fw.rdmaRcEnable(qpn, 20_000, 4, 1, 16)).toBe(0);
  const blk = c.fw.rdmaRcBlock(qpn), d = blk + R.RCC_TXD;
  c.u8.set(peer.mac, d + W.TXD_DST_MAC);
  c.u8.set(me.mac, d + W.TXD_SRC_MAC);
  c.u8.set(me.ip, d + W.TXD_SRC_IP);
  c.u8.set(peer.ip, d + W.TXD_DST_IP);
  c.dv.setUint16(d + W.TXD_SPORT, 0xc000 | qpn, true);
  c.dv.setUint8(d + W.TXD_TTL, 64);
  c.dv.setUint16(d + W.TXD_PKEY, 0xffff, true);
  const key = c.fw.rdmaMrRegister(0, 0, RAM, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), R.MR_LOCAL_WRITE | R.MR_REMOTE_WRITE | R.MR_REMOTE_READ);
  expect(key).not.toBe(0);
  return { c, qpn, key, ram: c.guests[0]!.base, blk };
}

/** Both cards' RC rounds (receive path, CM timers, RC timers and sends), then the fabric. */
function runRc(p: Pair, done: () => boolean): void {
  for (let i = 0; i < 20_000 && !done(); i++) {
    p.now += 1000;
    for (const c of [p.host, p.target]) { c.fw.rdmaRcPoll(1024, p.now); c.fw.rdmaCmPoll(p.now); }
    p.fabric.step(p.now);
  }
}

describe("RDMA-CM connected QPs under the RC engine", () => {
  it("a SEND and an RDMA WRITE on the admin queue's QPs complete with the CM's QPNs and PSNs", async () => {
    const p = await pair();
    p.target.fw.rdmaCmListen(4420);
    const id = connect(p, 0);
    run(p, 200_000, () => p.host.fw.rdmaCmState(id) === CW.CmState.ESTABLISHED && [...conns(p.target).values()].some((c) => c.state === "ESTABLISHED"));
    const h = conn(p.host, id);
    const t = [...conns(p.target).values()].find((c) => c.remoteCommId === h.localCommId)!;
    expect([h.state, t.state]).toEqual(["ESTABLISHED", "ESTABLISHED"]);
    const hs = side(p.host, h.localQpn, HOST, TARGET), ts = side(p.target, t.localQpn, TARGET, HOST);
    const capsule = pattern(64, 3), data = pattern(3000, 4);
    fill(hs, 0, capsule);
    fill(hs, 4096, data);
    expect(postRecv(ts, [{ wrid: 7, off: 0x8000, len: 4096 }])).toBe(1);
    expect(postSend(hs, [{ op: R.WrOp.SEND, wrid: 1, off: 0, len: 64 }, { op: R.WrOp.WRITE, wrid: 2, off: 4096, len: 3000, rkey: ts.key, roff: 0x10000 }])).toBe(2);
    const hc: ReturnType<typeof poll> = [], tc: ReturnType<typeof poll> = [];
    runRc(p, () => { hc.push(...poll(hs)); tc.push(...poll(ts)); return hc.length === 2 && tc.length === 1; });
    expect(hc.map((c) => [c.wrid, c.status])).toEqual([[1, 0], [2, 0]]);
    expect(tc.map((c) => [c.wrid, c.status, c.len])).toEqual([[7, 0, 64]]);
    expect(ram(ts, 0x8000, 64)).toEqual(capsule);
    expect(ram(ts, 0x10000, 3000)).toEqual(data);
    // The host sent 1 + 3 packets (MTU 1024) from the PSN it announced in its REQ.
    expect(p.host.dv.getUint32(p.host.fw.rdmaQpAddr(h.localQpn) + 36, true)).toBe((h.localPsn + 4) & 0xffffff);
  });

  it("the CM hands its QPs to the RC engine: a SEND and a READ complete with no manual rdmaRcEnable, through rdmaPoll alone", async () => {
    const p = await pair();
    p.target.fw.rdmaCmListen(4420);
    const id = connect(p, 1);
    const h = () => conn(p.host, id);
    const t = () => [...conns(p.target).values()].find((c) => c.remoteCommId === h().localCommId);
    const rounds = (done: () => boolean) => {
      for (let i = 0; i < 20_000 && !done(); i++) {
        p.now += 1000;
        for (const c of [p.host, p.target]) c.fw.rdmaPoll(1024, p.now);
        p.fabric.step(p.now);
      }
    };
    rounds(() => h().state === "ESTABLISHED" && t()?.state === "ESTABLISHED");
    const mr = (c: Card) => c.fw.rdmaMrRegister(0, 0, RAM, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), R.MR_LOCAL_WRITE | R.MR_REMOTE_READ);
    const hs: Side = { c: p.host, qpn: h().localQpn, key: mr(p.host), ram: p.host.guests[0]!.base, blk: p.host.fw.rdmaRcBlock(h().localQpn) };
    const ts: Side = { c: p.target, qpn: t()!.localQpn, key: mr(p.target), ram: p.target.guests[0]!.base, blk: p.target.fw.rdmaRcBlock(t()!.localQpn) };
    // The CM filled each QP's transmit descriptor from the connection: addresses, port 0xC000 | QPN, TTL 64.
    const d = hs.blk + R.RCC_TXD;
    expect([...p.host.u8.slice(d + W.TXD_SRC_MAC, d + W.TXD_SRC_MAC + 6)]).toEqual(HOST.mac);
    expect([...p.host.u8.slice(d + W.TXD_DST_MAC, d + W.TXD_DST_MAC + 6)]).toEqual(TARGET.mac);
    expect([...p.host.u8.slice(d + W.TXD_DST_IP, d + W.TXD_DST_IP + 4)]).toEqual(TARGET.ip);
    expect([p.host.dv.getUint16(d + W.TXD_SPORT, true), p.host.u8[d + W.TXD_TTL], p.host.dv.getUint16(d + W.TXD_PKEY, true)]).toEqual([0xc000 | hs.qpn, 64, 0xffff]);
    const capsule = pattern(64, 9), remote = pattern(2000, 10);
    fill(hs, 0, capsule);
    fill(ts, 0x20000, remote);
    expect(postRecv(ts, [{ wrid: 3, off: 0x8000, len: 4096 }])).toBe(1);
    expect(postSend(hs, [{ op: R.WrOp.SEND, wrid: 1, off: 0, len: 64 }, { op: R.WrOp.READ, wrid: 2, off: 0x4000, len: 2000, rkey: ts.key, roff: 0x20000 }])).toBe(2);
    const hc: ReturnType<typeof poll> = [], tc: ReturnType<typeof poll> = [];
    rounds(() => { hc.push(...poll(hs)); tc.push(...poll(ts)); return hc.length === 2 && tc.length === 1; });
    expect(hc.map((c) => [c.wrid, c.status])).toEqual([[1, 0], [2, 0]]);
    expect(tc.map((c) => [c.wrid, c.status, c.len])).toEqual([[3, 0, 64]]);
    expect(ram(ts, 0x8000, 64)).toEqual(capsule);
    expect(ram(hs, 0x4000, 2000)).toEqual(remote);
  });

  it("rdmaCmSetRcDefaults: the settings of the QPs connected afterwards on both sides; bad values are refused and change nothing", async () => {
    const p = await pair();
    expect(p.host.fw.rdmaCmSetRcDefaults(0, 4, 1, 8)).toBe(Counter.err_rdma_tx_bad_desc);
    expect(p.host.fw.rdmaCmSetRcDefaults(50_000, 4, 1, R.RC_SQ_DEPTH + 1)).toBe(Counter.err_rdma_tx_bad_desc);
    expect(p.host.fw.rdmaCmSetRcDefaults(50_000, 2, 3, 8)).toBe(0);
    p.target.fw.rdmaCmListen(4420);
    const id = connect(p, 0);
    run(p, 200_000, () => p.host.fw.rdmaCmState(id) === CW.CmState.ESTABLISHED && [...conns(p.target).values()].some((c) => c.state === "ESTABLISHED"));
    const h = conn(p.host, id);
    const t = [...conns(p.target).values()].find((c) => c.remoteCommId === h.localCommId)!;
    const rc = (c: Card, qpn: number) => {
      const b = c.fw.rdmaRcBlock(qpn);
      return [c.dv.getUint32(b + R.RCC_ON, true), c.dv.getFloat64(b + R.RCC_TIMEOUT, true), c.dv.getUint32(b + R.RCC_ACK_EVERY, true),
        c.dv.getUint32(b + R.RCC_MIN_RNR, true), c.dv.getUint32(b + R.RCC_MAX_WR, true)];
    };
    expect(rc(p.host, h.localQpn)).toEqual([1, 50_000, 2, 3, 8]);
    expect(rc(p.target, t.localQpn)).toEqual([1, 100_000, 4, 1, R.RC_SQ_DEPTH]); // the target kept the defaults
  });

  it("the RTU is lost: the host's first SEND counts as the RTU (communication established), the target answers at once", async () => {
    const p = await pair();
    p.target.fw.rdmaCmListen(4420);
    const id = connect(p, 1);
    run(p, 200_000, () => p.host.fw.rdmaCmState(id) === CW.CmState.ESTABLISHED);
    // The RTU is in the host's TX ring now: spoil its ICRC so the target drops it.
    const dv = p.host.dv;
    let spoiled = 0;
    for (let i = dv.getUint32(M.NET_TX_CTRL + 4, true); i !== dv.getUint32(M.NET_TX_CTRL, true); i = (i + 1) >>> 0) {
      const s = M.NET_TX_SLOTS + (i % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE, len = dv.getUint32(s, true);
      const f = p.host.u8.subarray(s + M.NET_SLOT_HDR, s + M.NET_SLOT_HDR + len);
      if (madAttr(f) === 0x0014) { f[len - 1]! ^= 0xff; spoiled++; }
    }
    expect(spoiled).toBe(1);
    const h = conn(p.host, id);
    const t = () => [...conns(p.target).values()].find((c) => c.remoteCommId === h.localCommId)!;
    const mr = (c: Card) => c.fw.rdmaMrRegister(0, 0, RAM, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), R.MR_LOCAL_WRITE);
    const hs: Side = { c: p.host, qpn: h.localQpn, key: mr(p.host), ram: p.host.guests[0]!.base, blk: p.host.fw.rdmaRcBlock(h.localQpn) };
    const ts: Side = { c: p.target, qpn: t().localQpn, key: mr(p.target), ram: p.target.guests[0]!.base, blk: p.target.fw.rdmaRcBlock(t().localQpn) };
    expect(postRecv(ts, [{ wrid: 1, off: 0, len: 64 }])).toBe(1);
    expect(postRecv(hs, [{ wrid: 2, off: 0x100, len: 64 }])).toBe(1);
    expect(postSend(hs, [{ op: R.WrOp.SEND, wrid: 3, off: 0x200, len: 64 }])).toBe(1);
    const start = p.now;
    const rounds = (done: () => boolean) => {
      for (let i = 0; i < 5000 && !done(); i++) { p.now += 1000; for (const c of [p.host, p.target]) c.fw.rdmaPoll(1024, p.now); p.fabric.step(p.now); }
    };
    rounds(() => t().state === "ESTABLISHED");
    expect(t().state).toBe("ESTABLISHED");
    expect(p.now - start).toBeLessThan(50_000); // not the CM's 1 ms REP retransmission
    expect(p.target.counters().err_rdma_bad_icrc).toBe(1); // the RTU was indeed lost
    // The target, now in RTS, answers at once.
    expect(postSend(ts, [{ op: R.WrOp.SEND, wrid: 4, off: 0x300, len: 64 }])).toBe(1);
    const hc: ReturnType<typeof poll> = [];
    rounds(() => { hc.push(...poll(hs)); return hc.some((c) => c.wrid === 2); });
    expect(hc.filter((c) => c.wrid === 2).map((c) => [c.status, c.len])).toEqual([[0, 64]]);
    expect(p.target.counters().cm_retransmits).toBe(0);
  });
});
