// Exported entry points of the RoCEv2 wire layer (one crossing per batch; per-packet work
// stays inside the firmware). Layouts: rdma/wire.ts (TXD_*, RXL_*, RC_*, OPT_*), memmap.ts.
import { RDMA_SCRATCH, RDMA_CTRL, NET_TX_CTRL } from "../memmap";
import { txSpace } from "../net/ring";
import { crc32, crc32c, crc16T10Dif, crc32Scalar } from "../crc";
import { TXD_SIZE, RC_FLAGS, IP_HDR_LEN, UDP_HDR_LEN, BTH_LEN, ICRC_LEN } from "./wire";
import { rxPoll } from "./rx";
import { txPacket, txMessage, segCount, TX_ERROR } from "./tx";
import { icrcCompute, buildPacket } from "./frame";
import { seqCheck } from "./seq";
import { qpModify, qpState, qpAddr, qpAcked, qpRetry, qpTakePsns, qpAckDue } from "./qp";
import { rdmaOpcodeEntry } from "./opcodes";
import { sampleFrames } from "./samples";

export { rdmaOpcodeEntry };

/** Card offset of a scratch transmit descriptor the host may fill (TXD_SIZE bytes). */
export function rdmaTxDesc(): u32 { return RDMA_SCRATCH + 64; }
/** Descriptor size, for a host-side check against wire.ts. */
export function rdmaTxDescSize(): u32 { return TXD_SIZE; }

/** One packet from descriptor d into the TX ring; frame length or 0xFFFFFFFF. */
export function rdmaTxPacket(d: u32): u32 { return txPacket(d); }
/** One message cut at the path MTU into the TX ring; packet count or 0xFFFFFFFF. */
export function rdmaTxMessage(d: u32): u32 { return txMessage(d); }
/** Packets a message of len bytes takes at path MTU mtu. */
export function rdmaSegCount(len: u32, mtu: u32): u32 { return segCount(len, mtu); }

/** Parse, type and ICRC-check up to budget RX frames; result log entries per frame. */
export function rdmaRxPoll(budget: u32): u32 { return rxPoll(budget); }
/** RDMA control flags (wire.ts RCF_*). */
export function rdmaSetFlags(flags: u32): void { store<u32>(RDMA_CTRL + RC_FLAGS, flags); }

/** ICRC of the frame at f (Ethernet header first) whose IPv4 total length is ipLen (0 when too short to have one). */
export function rdmaIcrc(f: u32, ipLen: u32): u32 {
  return ipLen < IP_HDR_LEN + UDP_HDR_LEN + BTH_LEN + ICRC_LEN ? 0 : icrcCompute(f, ipLen);
}

/** CRCs over card memory [p, p+n). */
export function crc32Of(p: u32, n: u32): u32 { return crc32(p, n); }
export function crc32ScalarOf(p: u32, n: u32): u32 { return crc32Scalar(p, n); }
export function crc32cOf(p: u32, n: u32): u32 { return crc32c(p, n); }
export function crc16T10DifOf(p: u32, n: u32): u32 { return crc16T10Dif(p, n); }
/**
 * The T10-DIF guards of n blocks of bs bytes from card offset p, each stored big-endian (as in
 * PI) at out + i * stride: one crossing per command instead of one per block.
 */
export function crc16T10DifBlocks(p: u32, bs: u32, n: u32, out: u32, stride: u32): void {
  for (let i: u32 = 0; i < n; i++) store<u16>(out + i * stride, bswap<u16>(<u16>crc16T10Dif(p + i * bs, bs)));
}

/** Queue pairs (qp.ts): one transition function and the PSN bookkeeping. */
export function rdmaQpModify(qpn: u32, to: u32, a: u32, b: u32, c: u32): u32 { return qpModify(qpn, to, a, b, c); }
export function rdmaQpState(qpn: u32): u32 { return qpState(qpn); }
export function rdmaQpAddr(qpn: u32): u32 { return qpAddr(qpn); }
export function rdmaQpTakePsns(qpn: u32, n: u32): u32 { return qpTakePsns(qpn, n); }
export function rdmaQpAcked(qpn: u32, psn: u32): u32 { return qpAcked(qpn, psn); }
export function rdmaQpRetry(qpn: u32): u32 { return qpRetry(qpn); }
export function rdmaQpAckDue(qpn: u32, ackreq: bool, every: u32): bool { return qpAckDue(qpn, ackreq, every); }
/** Sequence check of one packet against the stream state at st (seq.ts), for tests. */
export function rdmaSeqCheck(st: u32, op: u32, psn: u32, plen: u32, mtu: u32, readPsns: u32): u32 {
  return seqCheck(st, op, psn, plen, mtu, readPsns);
}

// ---- benchmark kernels: the work of n calls done inside the firmware ----

/** ICRC of the frame at f, n times; returns the last value. */
export function benchIcrc(f: u32, ipLen: u32, n: u32): u32 {
  let c: u32 = 0;
  for (let i: u32 = 0; i < n; i++) c ^= icrcCompute(f, ipLen);
  return c;
}

/** CRC-32 of [p, p+len), n times (simd: the 16-stream kernel where it applies, else scalar). */
export function benchCrc32(p: u32, len: u32, n: u32, simd: bool): u32 {
  let c: u32 = 0;
  for (let i: u32 = 0; i < n; i++) c ^= simd ? crc32(p, len) : crc32Scalar(p, len);
  return c;
}

/**
 * About 20 representative RoCEv2 frames (CM MAD to QP1, NVMe-oF capsules, WRITE/READ in every
 * position, ACK/NAK/RNR NAK, immediate and invalidate) into the TX ring; `scratch` is 8 KiB of
 * card memory for their payloads (e.g. a guest window). Returns the number of frames.
 */
export function rdmaSampleFrames(scratch: u32): u32 { return sampleFrames(scratch); }

/**
 * Build n packets from descriptor d into the TX ring, the host's consumption played by moving
 * the consumer index when the ring is full (benchmark kernel). Returns packets built.
 */
export function benchTxPackets(d: u32, n: u32): u32 {
  let built: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    if (txSpace() == 0) store<u32>(NET_TX_CTRL + 4, load<u32>(NET_TX_CTRL));
    if (txPacket(d) != TX_ERROR) built++;
  }
  return built;
}

// ---- RDMA-CM connection setup (cm.ts; layouts in cm-wire.ts) ----
import { cmInit, cmConfig, cmListen, cmConnect, cmDisconnect, cmRelease, cmPoll, cmConnAddr, cmState, cmSetRcDefaults } from "./cm";
/** Our IPv4 address (wire bytes as a little-endian u32) and MAC (high 16 / low 32 bits); sets up QP1. */
export function rdmaCmInit(ipWire: u32, macHi: u32, macLo: u32): u32 { return cmInit(ipWire, macHi, macLo); }
/** Retransmit timeout (virtual ns) and retransmits before a counted give-up. */
export function rdmaCmConfig(timeoutNs: u32, maxRetries: u32): void { cmConfig(timeoutNs, maxRetries); }
/**
 * RC engine settings of the QPs the CM connects from now on (rcEnable's: local ACK timeout in
 * virtual ns, an ACK every ackEvery packets, RNR timer code, work requests in flight at most).
 * Defaults after rdmaCmInit: 100 µs, 4, 1, RC_SQ_DEPTH. Returns 0 or the Counter of the refusal.
 */
export function rdmaCmSetRcDefaults(timeoutNs: f64, ackEvery: u32, rnrCode: u32, maxWr: u32): u32 {
  return cmSetRcDefaults(timeoutNs, ackEvery, rnrCode, maxWr);
}
/** Listen on an RDMA IP CM port (TCP port space, e.g. 4420); the listener's id or 0xFFFFFFFF. */
export function rdmaCmListen(port: u32): u32 { return cmListen(port); }
/** Connect an NVMe-oF queue to port of the peer (IP wire bytes, MAC); the connection id or 0xFFFFFFFF. */
export function rdmaCmConnect(port: u32, qid: u32, hrqsize: u32, hsqsize: u32, cntlid: u32, mtu: u32, ipWire: u32, macHi: u32, macLo: u32): u32 {
  return cmConnect(port, qid, hrqsize, hsqsize, cntlid, mtu, ipWire, macHi, macLo);
}
/** Disconnect an established connection (DREQ/DREP); 0 or 0xFFFFFFFF. */
export function rdmaCmDisconnect(id: u32): u32 { return cmDisconnect(id); }
/** Free a listener or a connection that ended (REJECTED, TIMED_OUT); 0 or 0xFFFFFFFF. */
export function rdmaCmRelease(id: u32): u32 { return cmRelease(id); }
/** CM timers at virtual time now (ns): retransmits, give-ups, TIMEWAIT expiry; MADs resent. */
export function rdmaCmPoll(now: f64): u32 { return cmPoll(now); }
/** Card offset of connection id's entry (cm-wire.ts CN_*), 0 for a bad id. */
export function rdmaCmConnAddr(id: u32): u32 { return cmConnAddr(id); }
/** Connection id's CmState. */
export function rdmaCmState(id: u32): u32 { return cmState(id); }

// ---- RC transport (mr.ts, resp.ts, req.ts, rc.ts; layouts in rcdefs.ts) ----
import { mrRegister, mrDeregister } from "./mr";
import { rcEnable, rcPostSend, rcPostRecv, rcServiceAll, rcNextDeadline } from "./req";
import { rcAddr, rcSetNow } from "./rc";
import { nicOn, nicPoll } from "../nic/nic";

/**
 * Register [addr, addr+len) of guest `guest`'s RAM window (card memory when guest is -1) as the
 * virtual addresses from vaHi:vaLo with access bits (rcdefs.ts MR_*). Returns the key (lkey ==
 * rkey), or 0 when refused (err_rdma_mr_bad).
 */
export function rdmaMrRegister(guest: i32, addr: u32, len: u32, vaHi: u32, vaLo: u32, access: u32): u32 {
  return mrRegister(guest, addr, len, (<u64>vaHi << 32) | <u64>vaLo, access);
}
/** Deregister the region of key: 0, or a Counter when no region has it. */
export function rdmaMrDeregister(key: u32): u32 { return mrDeregister(key); }
/** Let the RC engine drive QP qpn (req.ts rcEnable). */
export function rdmaRcEnable(qpn: u32, timeoutNs: f64, ackEvery: u32, rnrCode: u32, maxWr: u32): u32 {
  return rcEnable(qpn, timeoutNs, ackEvery, rnrCode, maxWr);
}
/** Card offset of QP qpn's RC block: control words, then SQ, RQ, CQ at rcdefs.ts RCQ_*. */
export function rdmaRcBlock(qpn: u32): u32 { return rcAddr(qpn); }
/** n send WQEs written at the send queue's tail: check and queue them; returns n or 0. */
export function rdmaRcPostSend(qpn: u32, n: u32): u32 { return rcPostSend(qpn, n); }
/** n receive WQEs written at the receive queue's tail: check and queue them; returns those queued. */
export function rdmaRcPostRecv(qpn: u32, n: u32): u32 { return rcPostRecv(qpn, n); }
/**
 * One RC round at virtual time now (ns): up to budget received frames through the receive
 * path (responder, completer), then every engine QP's timers, resends and new work requests.
 * Returns the frames taken from the RX ring.
 */
export function rdmaRcPoll(budget: u32, now: f64): u32 {
  rcSetNow(now);
  const n = rxPoll(budget);
  rcServiceAll();
  return n;
}
/**
 * One round of everything RDMA at virtual time now (ns), in one crossing: up to budget received
 * frames (responder, completer, CM MADs), every RC QP's timers and sends, the CM's timers, then
 * the storage-side NIC's round (nic/nic.ts nicPoll) when nicInit has switched it on. Returns the
 * work done (frames taken + NIC WQEs and completions handled): 0 means an idle round.
 */
export function rdmaPoll(budget: u32, now: f64): u32 {
  rcSetNow(now);
  let n = rxPoll(budget);
  rcServiceAll();
  cmPoll(now);
  if (nicOn()) n += nicPoll(budget, now);
  return n;
}
/** Earliest end of an RC retransmission timer or RNR wait (virtual ns), +Infinity when none runs. */
export function rdmaRcNextDeadline(): f64 { return rcNextDeadline(); }
