// The RC engine fed hostile but well-framed packets (valid ICRC, so they reach the responder
// and the completer): random RC opcodes, PSNs around the expected one, RETHs with good and bad
// keys, addresses and lengths, AETHs of every syndrome. Nothing traps, and no byte of guest RAM
// outside the one remotely writable region and the posted receive buffers changes.
import { describe, it, expect } from "vitest";
import { Card } from "../../host/card.js";
import * as M from "../../assembly/memmap.js";
import { writeDesc, txDrain, rxPush, pattern, W } from "./setup.js";
import { R } from "./rc-setup.js";

function rng(seed: number) { let x = seed >>> 0 || 1; return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; }; }

const RC_OPS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16, 0x17];

describe("RC engine on hostile packets", () => {
  it("never traps and writes nothing outside the writable region and the posted receive buffers", async () => {
    expect(R.RCQ_CQ + R.RC_CQ_DEPTH * R.CQE_SIZE).toBeLessThanOrEqual(M.RCQ_SIZE);
    const src = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [] }); // builds the frames
    const c = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [] });
    const fw = c.fw, qpn = 0x12;
    fw.rdmaQpModify(qpn, 1, W.Transport.RC, 0, 0);
    fw.rdmaQpModify(qpn, 2, 256, 0x11, 1000);
    fw.rdmaQpModify(qpn, 3, 7, 7, 50);
    expect(fw.rdmaRcEnable(qpn, 5000, 2, 1, 16)).toBe(0);
    const g = c.guests[0]!;
    c.u8.fill(0xee, g.base, g.base + (1 << 20));
    const wkey = fw.rdmaMrRegister(0, 0x10000, 0x10000, 0, 0x10000, R.MR_REMOTE_WRITE | R.MR_REMOTE_READ | R.MR_LOCAL_WRITE);
    const rokey = fw.rdmaMrRegister(0, 0x40000, 0x1000, 0, 0x40000, R.MR_REMOTE_READ);
    const lkey = fw.rdmaMrRegister(0, 0x30000, 0x8000, 0, 0x30000, R.MR_LOCAL_WRITE);
    expect([wkey, rokey, lkey].every((k) => k !== 0)).toBe(true);
    const r = rng(77);
    let posted = 0;
    const postRecvs = () => {
      const tail = c.dv.getUint32(c.fw.rdmaRcBlock(qpn) + R.RCC_RQ_TAIL, true), head = c.dv.getUint32(c.fw.rdmaRcBlock(qpn) + R.RCC_RQ_HEAD, true);
      const n = R.RC_RQ_DEPTH - (tail - head);
      for (let i = 0; i < n; i++) {
        const e = fw.rdmaRcBlock(qpn) - R.RCQ_CTRL + R.RCQ_RQ + ((tail + i) % R.RC_RQ_DEPTH) * R.RWQE_SIZE;
        c.dv.setBigUint64(e + R.RWQE_WRID, BigInt(posted++), true);
        c.dv.setBigUint64(e + R.RWQE_LADDR, BigInt(0x30000 + (r() % 32) * 1024), true);
        c.dv.setUint32(e + R.RWQE_LKEY, lkey, true);
        c.dv.setUint32(e + R.RWQE_LEN, 1 + (r() % 1024), true); // may run past the region: refused when posted
      }
      fw.rdmaRcPostRecv(qpn, n);
    };
    const keys = [wkey, rokey, lkey, wkey ^ 0x100, 0, 0xffffffff, r()];
    let now = 0, frames = 0;
    const q = fw.rdmaQpAddr(qpn);
    for (let round = 0; round < 800; round++) {
      if (round % 20 === 0) postRecvs();
      const batch: Uint8Array[] = [];
      const epsn = c.dv.getUint32(q + 16, true); // the responder's expected PSN (qp.ts QP_RQ + SEQ_EPSN)
      const sqPsn = c.dv.getUint32(q + 36, true); // and its requester's next PSN (QP_SQ_PSN)
      for (let k = 0; k < 3; k++) {
        const op = RC_OPS[r() % RC_OPS.length]!;
        const near = op >= 0x0d && op <= 0x12 ? sqPsn : epsn;
        const len = [0, 1, 256, 255, 257, r() % 300][r() % 6]!;
        const va = [0x10000n, 0x1fff0n, 0x20000n, 0xffffffffffffff00n, BigInt(r()), 0x40000n][r() % 6]!;
        const d = writeDesc(src, {
          opcode: op, dqp: qpn, psn: (near + k + (r() % 4 === 0 ? (r() % 9) - 4 : 0)) & 0xffffff, ackreq: (r() & 1) === 1, payload: pattern(len, r()),
          va, rkey: keys[r() % keys.length]!, dmaLen: [0, len, 256, 4096, 0xffffffff, r()][r() % 6]!,
          aeth: (([0x00, 0x20, 0x60, 0x61, 0x62, 0x63, 0x80][r() % 7]! | (r() % 32)) << 24) | (r() & 0xffffff), imm: r(),
        });
        if (src.fw.rdmaTxPacket(d) === 0xffffffff) continue;
        batch.push(...txDrain(src));
        frames++;
      }
      rxPush(c, batch);
      now += 3000;
      expect(fw.rdmaRcPoll(1024, now)).toBe(batch.length);
      txDrain(c); // the responder's ACKs / NAKs / READ RESPONSEs go nowhere
      const blk = fw.rdmaRcBlock(qpn);
      c.dv.setUint32(blk + R.RCC_CQ_CONS, c.dv.getUint32(blk + R.RCC_CQ_PROD, true), true);
    }
    expect(frames).toBeGreaterThan(1500);
    const ram = c.u8.subarray(g.base, g.base + (1 << 20));
    const outside: number[] = [];
    for (let i = 0; i < ram.length; i++) {
      const inWritable = i >= 0x10000 && i < 0x20000;
      const inRecv = i >= 0x30000 && i < 0x38000;
      if (!inWritable && !inRecv && ram[i] !== 0xee) outside.push(i);
    }
    expect(outside.slice(0, 5)).toEqual([]);
    const ctr = c.counters();
    expect(ctr.rdma_rx_accepted).toBeGreaterThan(50);
    expect(ctr.rdma_rc_completions).toBeGreaterThan(20);
    expect(ctr.err_rdma_bad_rkey + ctr.err_rdma_mr_bounds + ctr.err_rdma_mr_access).toBeGreaterThan(0);
    expect(ctr.rdma_rc_naks_sent).toBeGreaterThan(0);
  });
});
