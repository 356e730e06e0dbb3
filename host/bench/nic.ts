// Storage-side NIC, WQE fetch + packet build: controllers' send queues full of NIC WQEs
// (SINGLE + RESPONSE and INITIAL / INTERMEDIATE / TAIL + RESPONSE, 256-byte packets at path MTU
// 256, 16-byte responses) on 4 controllers with a QP each; nicPoll fetches, checks, posts RC
// work requests and builds the frames (headers, ICRC) into the TX ring, the host's side played
// inside the kernel (TX ring consumed, every packet acknowledged). Beside it: the same packets
// built from a ready transmit descriptor by the wire layer alone (rdmaTxPacket, no fetch, no RC).
import { Card } from "../card.js";
import * as M from "../../assembly/memmap.js";
import * as W from "../../assembly/rdma/wire.js";
import * as R from "../../assembly/rdma/rcdefs.js";
import * as N from "../../assembly/nic/defs.js";
import { compare, type BenchOptions, type Figure } from "./harness.js";

const CTRLS = 4;
const MTU = 256;
const ROUNDS = 16;
const BUDGET = 512; // per NIC round: well inside the 1024-slot TX ring
// Per controller, repeating with the ring (8 divides NIC_SQ_DEPTH): 3 of the 8 are responses.
const PATTERN = [N.NicWqeType.SINGLE, N.NicWqeType.RESPONSE, N.NicWqeType.SINGLE, N.NicWqeType.RESPONSE,
  N.NicWqeType.INITIAL, N.NicWqeType.INTERMEDIATE, N.NicWqeType.TAIL, N.NicWqeType.RESPONSE];

function fillTxd(c: Card, d: number, qpn: number): void {
  c.u8.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2], d + W.TXD_DST_MAC);
  c.u8.set([10, 0, 0, 2, 10, 0, 0, 1], d + W.TXD_SRC_IP);
  c.dv.setUint16(d + W.TXD_SPORT, 0xc000 | qpn, true);
  c.dv.setUint8(d + W.TXD_TTL, 64);
  c.dv.setUint16(d + W.TXD_PKEY, 0xffff, true);
}

/** A NIC card with CTRLS controllers, each with one bound RC QP in RTS and a full send queue of PATTERN WQEs. */
export async function nicBenchCard(): Promise<Card> {
  const c = await Card.create({ guests: [{ ramBytes: 1 << 16 }], disks: [] });
  const fw = c.fw, dv = c.dv;
  if (fw.nicInit(N.NGF_TAIL_FAST_PATH) !== 0) throw new Error("nic bench: nicInit");
  for (let k = 0; k < CTRLS; k++) {
    const qpn = 0x20 + k;
    fw.rdmaQpModify(qpn, 1, W.Transport.RC, 0, 0);
    fw.rdmaQpModify(qpn, 2, MTU, 0x40 + k, 0);
    fw.rdmaQpModify(qpn, 3, 7, 7, 0);
    if (fw.rdmaRcEnable(qpn, 1e9, 16, 1, R.RC_SQ_DEPTH) !== 0) throw new Error("nic bench: rcEnable");
    fillTxd(c, fw.rdmaRcBlock(qpn) + R.RCC_TXD, qpn);
    if (fw.nicCtrlEnable(k) === 0 || fw.nicBindQp(qpn, k) !== 0) throw new Error("nic bench: controller setup");
    const base = M.NIC_CTRLS + k * M.NIC_CTRL_SIZE;
    for (let i = 0; i < M.NIC_SQ_DEPTH; i++) {
      const e = base + N.NC_SQ + i * N.NW_SIZE, t = PATTERN[i % PATTERN.length]!;
      c.u8.fill(0, e, e + N.NW_SIZE);
      dv.setUint8(e + N.NW_TYPE, t);
      dv.setUint32(e + N.NW_QPN, qpn, true);
      dv.setUint32(e + N.NW_STAGE_OFF, t === N.NicWqeType.RESPONSE ? 0x8000 : (i % 8) * MTU, true);
      dv.setUint32(e + N.NW_LEN, t === N.NicWqeType.RESPONSE ? 16 : MTU, true);
      dv.setBigUint64(e + N.NW_RADDR, 0x1000n, true);
      dv.setUint32(e + N.NW_RKEY, 0x1234, true);
      dv.setUint32(e + N.NW_TOTAL, t === N.NicWqeType.SINGLE ? MTU : 3 * MTU, true);
      dv.setUint32(e + N.NW_TAG, i, true);
    }
  }
  return c;
}

export async function benchNic(o: BenchOptions): Promise<Figure> {
  const c = await nicBenchCard();
  // Reference: a 256-byte RDMA WRITE MIDDLE and a 16-byte SEND ONLY from ready descriptors, 5 : 3 like PATTERN.
  const r = await Card.create({ guests: [{ ramBytes: 1 << 16 }], disks: [] });
  const dData = r.fw.rdmaTxDesc(), dResp = dData + W.TXD_SIZE;
  for (const [d, op, len] of [[dData, W.Op.RC_WRITE_MIDDLE, MTU], [dResp, W.Op.RC_SEND_ONLY, 16]] as const) {
    r.u8.fill(0, d, d + W.TXD_SIZE);
    fillTxd(r, d, 0x20);
    r.dv.setUint8(d + W.TXD_OPCODE, op);
    r.dv.setUint32(d + W.TXD_DQP, 0x40, true);
    r.dv.setUint32(d + W.TXD_PAYLOAD, r.guests[0]!.base, true);
    r.dv.setUint32(d + W.TXD_LEN, len, true);
  }
  const per = ROUNDS * BUDGET / 8;
  const fig = compare(
    `storage-side NIC: WQE fetch + packet build (${CTRLS} controllers, SINGLE+RESPONSE and INITIAL..TAIL+RESPONSE, MTU ${MTU}, tail fast path on)`, "WQEs/s",
    () => c.fw.benchNicFetch(ROUNDS, BUDGET),
    "the same packets from ready descriptors through the wire layer (rdmaTxPacket), no fetch and no RC state",
    () => r.fw.benchTxPackets(dData, 5 * per) + r.fw.benchTxPackets(dResp, 3 * per),
    o,
  );
  // Only a clean run counts: every WQE accepted, nothing refused, the QPs still in RTS.
  const errs = c.errors();
  if (Object.keys(errs).length || [0, 1, 2, 3].some((k) => c.fw.rdmaQpState(0x20 + k) !== 3)) {
    throw new Error(`nic-fetch: the run was not clean: ${JSON.stringify(errs)}`);
  }
  return fig;
}
