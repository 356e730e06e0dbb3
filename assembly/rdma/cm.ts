// RDMA-CM connection setup (IBTA vol. 1 chapter 12; Annex A11 RDMA IP CM service; NVMe-oF 1.1
// §7.3 RDMA transport private data). CM MADs ride UD SEND ONLY to QP1 with the GSI Q_Key; the
// receive path (rx.ts deliver) hands every accepted QP1 datagram to cmRecv, and rdmaCmPoll(now)
// retransmits REQ / REP / DREQ on a timeout on the virtual clock, with a counted give-up.
// One entry per connection (cm-wire.ts CN_*), one transition function (cmTransition):
//   active:  IDLE → REQ_SENT → REP_RCVD → ESTABLISHED → DISCONNECTING → TIMEWAIT → IDLE
//   passive: LISTEN (per port) ; IDLE → REQ_RCVD → REP_SENT → ESTABLISHED → TIMEWAIT → IDLE
// On ESTABLISHED the connection's RC QP is in RTS with the negotiated QPNs, PSNs and MTU
// (qp.ts): the active side moves INIT → RTR → RTS on the REP, the passive side INIT → RTR
// before it sends the REP and RTR → RTS on the RTU.
import { Counter } from "../counters";
import { count } from "../stats";
import { CM_CTRL, CM_CONN_BASE, CM_MAX_CONNS, CM_CONN_SIZE, MAX_QPS } from "../memmap";
import {
  Op, Transport, QP1, GSI_QKEY, DEFAULT_PKEY, IP_DEFAULT_TTL, ROCEV2_SPORT_BASE, PSN_MASK, QPN_MASK, PMTU_MIN, PMTU_MAX,
  ETH_SRC_OFF, ETH_HDR_LEN, IP_SRC_OFF, OPT_HDRLEN, TXD_SIZE, TXD_DST_MAC, TXD_SRC_MAC, TXD_SRC_IP, TXD_DST_IP, TXD_SPORT,
  TXD_TTL, TXD_OPCODE, TXD_PKEY, TXD_DQP, TXD_PSN, TXD_DETH_QKEY, TXD_DETH_SRCQP, TXD_PAYLOAD, TXD_LEN,
} from "./wire";
import {
  MAD_SIZE, MAD_BASE_VERSION_OFF, MAD_CLASS_OFF, MAD_CLASS_VERSION_OFF, MAD_METHOD_OFF, MAD_TID_OFF, MAD_ATTR_ID_OFF,
  MAD_BASE_VERSION, MGMT_CLASS_CM, CM_CLASS_VERSION, MAD_METHOD_SEND, CM_ATTR_REQ, CM_ATTR_REJ, CM_ATTR_REP, CM_ATTR_RTU,
  CM_ATTR_DREQ, CM_ATTR_DREP, REQ_LOCAL_COMM_ID, REQ_SERVICE_ID, REQ_LOCAL_CA_GUID, REQ_LOCAL_QKEY, REQ_LOCAL_QPN,
  REQ_INITIATOR_DEPTH, REQ_REMOTE_EECN, REQ_STARTING_PSN, REQ_PKEY, REQ_MTU, REQ_MAX_CM_RETRIES, REQ_PRIMARY_LOCAL_LID,
  REQ_PRIMARY_REMOTE_LID, REQ_PRIMARY_LOCAL_GID, REQ_PRIMARY_REMOTE_GID, REQ_PRIMARY_HOP_LIMIT, REQ_PRIMARY_ACK_TIMEOUT,
  REQ_PRIVATE_DATA, CM_TRANSPORT_RC, CM_TIMEOUT_EXP, REP_LOCAL_COMM_ID, REP_REMOTE_COMM_ID, REP_LOCAL_QKEY, REP_LOCAL_QPN,
  REP_STARTING_PSN, REP_RESPONDER_RESOURCES, REP_INITIATOR_DEPTH, REP_TARGET_ACK_DELAY, REP_RNR_RETRY, REP_LOCAL_CA_GUID,
  REP_PRIVATE_DATA, RTU_LOCAL_COMM_ID, RTU_REMOTE_COMM_ID, REJ_LOCAL_COMM_ID, REJ_REMOTE_COMM_ID, REJ_MSG_REJECTED,
  REJ_REASON, REJ_MSG_REQ, REJ_REASON_INVALID_SERVICE_ID, REJ_REASON_CONSUMER, REJ_REASON_NO_QP, DREQ_LOCAL_COMM_ID,
  DREQ_REMOTE_COMM_ID, DREQ_REMOTE_QPN, DREP_LOCAL_COMM_ID, DREP_REMOTE_COMM_ID, IB_MTU_256, IP_CM_SID_PREFIX_HI,
  IP_CM_SID_PREFIX_LO, IP_CM_PS_TCP, IP_CM_HDR_LEN, IP_CM_VERSION_OFF, IP_CM_IPVER_OFF, IP_CM_SPORT_OFF,
  IP_CM_SRC_IP4_OFF, IP_CM_DST_IP4_OFF, IP_CM_IPV4, NVMF_REQ_RECFMT, NVMF_REQ_QID, NVMF_REQ_HRQSIZE, NVMF_REQ_HSQSIZE,
  NVMF_REQ_CNTLID, NVMF_REP_RECFMT, NVMF_REP_CRQSIZE, CmState, CmRole, CMC_MAC, CMC_IP, CMC_NOW, CMC_TIMEOUT,
  CMC_MAX_RETRIES, CMC_NEXT_GEN, CMC_PRNG, CMC_UD_PSN, CMC_READY, CMC_TXD, CN_STATE, CN_ROLE, CN_LOCAL_COMM_ID,
  CN_REMOTE_COMM_ID, CN_LOCAL_QPN, CN_REMOTE_QPN, CN_LOCAL_PSN, CN_REMOTE_PSN, CN_MTU, CN_PORT, CN_QID, CN_HRQSIZE,
  CN_HSQSIZE, CN_CNTLID, CN_CRQSIZE, CN_REMOTE_IP, CN_REMOTE_MAC, CN_TID, CN_DEADLINE, CN_RETRIES, CN_REJ_REASON,
  CN_PENDING, CN_RETRY_CNT, CN_RNR_RETRY, CN_LOCAL_SPORT, CN_MAD, CM_NONE, CMC_RC_TIMEOUT, CMC_RC_ACK_EVERY, CMC_RC_RNR,
  CMC_RC_MAX_WR,
} from "./cm-wire";
import { RCC_TXD, RCC_ON, RC_SQ_DEPTH } from "./rcdefs";
import { rcEnable } from "./req";
import { rcAddr } from "./rc";
import { put16, put32, put64, be16, be32, be64 } from "./headers";
import { opEntry } from "./opcodes";
import { BTH_AT } from "./frame";
import { txPacket, TX_ERROR } from "./tx";
import { qpModify, qpState, QpState } from "./qp";

const DEFAULT_TIMEOUT_NS: u32 = 1_000_000; // 1 ms of virtual time
const DEFAULT_MAX_RETRIES: u32 = 15; // the REQ's Max CM Retries field is 4 bits
const QPN_FIRST: u32 = 0x10; // QPs below are left for direct use (QP0/QP1 and tests)
const QP_RETRY: u32 = 7;
const QP_RNR_RETRY: u32 = 7;
const CM_EPHEMERAL_PORT: u32 = 0xc000; // IP CM source ports of active connections: 0xC000 + id
// RC engine defaults for connected QPs: an ACK timeout of 100 µs of virtual time (a few round
// trips of the emulated fabric), an ACK every 4 packets, RNR timer code 1 (10 µs), a full send queue.
const RC_DEFAULT_TIMEOUT_NS: f64 = 100_000;
const RC_DEFAULT_ACK_EVERY: u32 = 4;
const RC_DEFAULT_RNR: u32 = 1;
const QPN_SPORT_MASK: u32 = 0x3fff; // UDP source port 0xC000 | QPN (wire.ts ROCEV2_SPORT_BASE)

@inline function conn(id: u32): u32 { return CM_CONN_BASE + id * CM_CONN_SIZE; }
@inline function now(): f64 { return load<f64>(CM_CTRL + CMC_NOW); }

/** May a connection in state `from` move to `to`? */
export function cmTransitionAllowed(from: u32, to: u32): bool {
  switch (from) {
    case CmState.IDLE: return to == CmState.LISTEN || to == CmState.REQ_SENT || to == CmState.REQ_RCVD;
    case CmState.LISTEN: return to == CmState.IDLE;
    case CmState.REQ_SENT: return to == CmState.REP_RCVD || to == CmState.REJECTED || to == CmState.TIMED_OUT;
    case CmState.REP_RCVD: return to == CmState.ESTABLISHED;
    case CmState.REQ_RCVD: return to == CmState.REP_SENT || to == CmState.IDLE;
    case CmState.REP_SENT: return to == CmState.ESTABLISHED || to == CmState.TIMEWAIT;
    case CmState.ESTABLISHED: return to == CmState.DISCONNECTING || to == CmState.TIMEWAIT;
    case CmState.DISCONNECTING: return to == CmState.TIMEWAIT;
    case CmState.TIMEWAIT: return to == CmState.IDLE;
    case CmState.REJECTED: return to == CmState.IDLE;
    case CmState.TIMED_OUT: return to == CmState.IDLE;
  }
  return false;
}

/**
 * The one transition function: moves connection c to `to`, doing what entering that state
 * means for its QP and timers. Returns false (counted, err_cm_bad_transition) when the move is
 * not allowed or the QP refused its own transition (err_cm_qp_setup).
 */
function cmTransition(c: u32, to: u32): bool {
  const from = load<u32>(c + CN_STATE);
  if (!cmTransitionAllowed(from, to)) { count(Counter.err_cm_bad_transition); return false; }
  const qpn = load<u32>(c + CN_LOCAL_QPN);
  let ok = true;
  if (to == CmState.REQ_SENT || to == CmState.REQ_RCVD) {
    ok = qpModify(qpn, QpState.INIT, Transport.RC, 0, 0) == 0;
  } else if (to == CmState.REP_RCVD) {
    // Active: the REP gave the remote QPN and PSN; RTR then RTS at once (the RTU follows).
    ok = qpModify(qpn, QpState.RTR, load<u32>(c + CN_MTU), load<u32>(c + CN_REMOTE_QPN), load<u32>(c + CN_REMOTE_PSN)) == 0
      && qpModify(qpn, QpState.RTS, load<u32>(c + CN_RETRY_CNT), load<u32>(c + CN_RNR_RETRY), load<u32>(c + CN_LOCAL_PSN)) == 0;
  } else if (to == CmState.REP_SENT) {
    // Passive: ready to receive before the REP goes out (the peer may send right after its RTU,
    // and its first packets may overtake the RTU): the RC engine takes the QP over now.
    ok = qpModify(qpn, QpState.RTR, load<u32>(c + CN_MTU), load<u32>(c + CN_REMOTE_QPN), load<u32>(c + CN_REMOTE_PSN)) == 0
      && rcStart(c, qpn);
  } else if (to == CmState.ESTABLISHED && from == CmState.REP_RCVD) {
    ok = rcStart(c, qpn);
  } else if (to == CmState.ESTABLISHED && from == CmState.REP_SENT) {
    ok = qpModify(qpn, QpState.RTS, load<u32>(c + CN_RETRY_CNT), load<u32>(c + CN_RNR_RETRY), load<u32>(c + CN_LOCAL_PSN)) == 0;
  } else if (to == CmState.TIMEWAIT || to == CmState.TIMED_OUT || to == CmState.REJECTED) {
    if (qpn != 0 && qpState(qpn) != QpState.RESET) qpModify(qpn, QpState.ERR, 0, 0, 0);
  } else if (to == CmState.IDLE) {
    if (qpn != 0 && from != CmState.LISTEN) { qpModify(qpn, QpState.RESET, 0, 0, 0); store<u32>(rcAddr(qpn) + RCC_ON, 0); }
  }
  if (!ok) { count(Counter.err_cm_qp_setup); return false; }
  store<u32>(c + CN_STATE, to);
  if (to == CmState.TIMEWAIT) armTimer(c);
  else if (to == CmState.ESTABLISHED || to == CmState.REJECTED || to == CmState.TIMED_OUT) disarm(c);
  else if (to == CmState.IDLE) memory.fill(c, 0, CM_CONN_SIZE);
  count(Counter.cm_transitions);
  return true;
}

/**
 * The RC engine drives connection c's QP: rcEnable with the control block's defaults, then the
 * QP's transmit descriptor from the connection (our MAC / IP, the peer's, UDP source port
 * 0xC000 | QPN, TTL 64, the default P_Key). False when rcEnable refused.
 */
function rcStart(c: u32, qpn: u32): bool {
  if (rcEnable(qpn, load<f64>(CM_CTRL + CMC_RC_TIMEOUT), load<u32>(CM_CTRL + CMC_RC_ACK_EVERY), load<u32>(CM_CTRL + CMC_RC_RNR),
    load<u32>(CM_CTRL + CMC_RC_MAX_WR)) != 0) return false;
  const d = rcAddr(qpn) + RCC_TXD;
  memory.copy(d + TXD_DST_MAC, c + CN_REMOTE_MAC, 6);
  memory.copy(d + TXD_SRC_MAC, CM_CTRL + CMC_MAC, 6);
  store<u32>(d + TXD_SRC_IP, load<u32>(CM_CTRL + CMC_IP));
  store<u32>(d + TXD_DST_IP, load<u32>(c + CN_REMOTE_IP));
  store<u16>(d + TXD_SPORT, <u16>(ROCEV2_SPORT_BASE | (qpn & QPN_SPORT_MASK)));
  store<u8>(d + TXD_TTL, <u8>IP_DEFAULT_TTL);
  store<u16>(d + TXD_PKEY, <u16>DEFAULT_PKEY);
  return true;
}

/** RC engine settings for the QPs of later connections (rcEnable's); 0 or the Counter of the refusal. */
export function cmSetRcDefaults(timeoutNs: f64, ackEvery: u32, rnrCode: u32, maxWr: u32): u32 {
  if (!(timeoutNs > 0) || ackEvery == 0 || rnrCode > 31 || maxWr == 0 || maxWr > RC_SQ_DEPTH) { count(Counter.err_rdma_tx_bad_desc); return Counter.err_rdma_tx_bad_desc; }
  store<f64>(CM_CTRL + CMC_RC_TIMEOUT, timeoutNs);
  store<u32>(CM_CTRL + CMC_RC_ACK_EVERY, ackEvery);
  store<u32>(CM_CTRL + CMC_RC_RNR, rnrCode);
  store<u32>(CM_CTRL + CMC_RC_MAX_WR, maxWr);
  return 0;
}

@inline function armTimer(c: u32): void {
  store<f64>(c + CN_DEADLINE, now() + <f64>load<u32>(CM_CTRL + CMC_TIMEOUT));
}
@inline function disarm(c: u32): void {
  store<u32>(c + CN_PENDING, 0);
  store<f64>(c + CN_DEADLINE, 0);
}

/** A free connection slot and a fresh local comm ID, or CM_NONE (counted). */
function allocConn(): u32 {
  for (let i: u32 = 0; i < CM_MAX_CONNS - 1; i++) { // the last slot's MAD area is scratchMad()
    const c = conn(i);
    if (load<u32>(c + CN_STATE) == CmState.IDLE && load<u32>(c + CN_ROLE) == CmRole.NONE) {
      memory.fill(c, 0, CM_CONN_SIZE);
      const gen = load<u32>(CM_CTRL + CMC_NEXT_GEN) + 1;
      store<u32>(CM_CTRL + CMC_NEXT_GEN, gen);
      store<u32>(c + CN_LOCAL_COMM_ID, (gen << 8) | i); // the slot is in the low byte (lookups)
      return i;
    }
  }
  count(Counter.err_cm_no_resources);
  return CM_NONE;
}

/** A QP number in RESET that no connection holds, or 0 (none free). */
function allocQpn(): u32 {
  for (let q: u32 = QPN_FIRST; q < MAX_QPS; q++) {
    if (qpState(q) != QpState.RESET) continue;
    let used = false;
    for (let i: u32 = 0; i < CM_MAX_CONNS && !used; i++) {
      const c = conn(i);
      used = load<u32>(c + CN_STATE) != CmState.IDLE && load<u32>(c + CN_LOCAL_QPN) == q;
    }
    if (!used) return q;
  }
  return 0;
}

/** Starting PSNs: a seeded xorshift (deterministic per card address). */
function nextPsn(): u32 {
  let x = load<u32>(CM_CTRL + CMC_PRNG);
  x ^= x << 13; x ^= x >> 17; x ^= x << 5;
  store<u32>(CM_CTRL + CMC_PRNG, x);
  return x & PSN_MASK;
}

/** The connection whose local comm ID is `id` (in any live state), or 0. */
function byLocalCommId(id: u32): u32 {
  const i = id & 0xff;
  if (i >= CM_MAX_CONNS) return 0;
  const c = conn(i);
  return load<u32>(c + CN_STATE) != CmState.IDLE && load<u32>(c + CN_LOCAL_COMM_ID) == id ? c : 0;
}

// ---- MAD building and sending ----

function madHeader(m: u32, attr: u32, tid: u64): void {
  memory.fill(m, 0, MAD_SIZE);
  store<u8>(m + MAD_BASE_VERSION_OFF, <u8>MAD_BASE_VERSION);
  store<u8>(m + MAD_CLASS_OFF, <u8>MGMT_CLASS_CM);
  store<u8>(m + MAD_CLASS_VERSION_OFF, <u8>CM_CLASS_VERSION);
  store<u8>(m + MAD_METHOD_OFF, <u8>MAD_METHOD_SEND);
  put64(m + MAD_TID_OFF, tid);
  put16(m + MAD_ATTR_ID_OFF, attr);
}

/** A GID for an IPv4 address on RoCEv2: ::ffff:a.b.c.d (IPv4-mapped IPv6). */
@inline function gidPut(p: u32, ipWire: u32): void {
  store<u64>(p, 0);
  store<u32>(p + 8, 0xffff0000); // bytes 00 00 ff ff
  store<u32>(p + 12, ipWire);
}

/** CA GUID derived from our MAC (EUI-64: the MAC with ff:fe in the middle). */
function caGuid(): u64 {
  const m = CM_CTRL + CMC_MAC;
  let g: u64 = 0;
  for (let i: u32 = 0; i < 3; i++) g = (g << 8) | <u64>load<u8>(m + i);
  g = (g << 16) | 0xfffe;
  for (let i: u32 = 3; i < 6; i++) g = (g << 8) | <u64>load<u8>(m + i);
  return g ^ 0x0200000000000000; // the universal/local bit flipped (modified EUI-64)
}

/** Send the MAD at m (MAD_SIZE bytes) as a UD SEND ONLY to QP1 of the peer (ip, mac). */
function sendMad(m: u32, ipWire: u32, mac: u32): bool {
  const d = CM_CTRL + CMC_TXD;
  memory.fill(d, 0, TXD_SIZE);
  memory.copy(d + TXD_DST_MAC, mac, 6);
  memory.copy(d + TXD_SRC_MAC, CM_CTRL + CMC_MAC, 6);
  store<u32>(d + TXD_SRC_IP, load<u32>(CM_CTRL + CMC_IP));
  store<u32>(d + TXD_DST_IP, ipWire);
  store<u16>(d + TXD_SPORT, <u16>(ROCEV2_SPORT_BASE | QP1));
  store<u8>(d + TXD_TTL, <u8>IP_DEFAULT_TTL);
  store<u8>(d + TXD_OPCODE, <u8>Op.UD_SEND_ONLY);
  store<u16>(d + TXD_PKEY, <u16>DEFAULT_PKEY);
  store<u32>(d + TXD_DQP, QP1);
  const psn = load<u32>(CM_CTRL + CMC_UD_PSN);
  store<u32>(CM_CTRL + CMC_UD_PSN, (psn + 1) & PSN_MASK);
  store<u32>(d + TXD_PSN, psn);
  store<u32>(d + TXD_DETH_QKEY, GSI_QKEY);
  store<u32>(d + TXD_DETH_SRCQP, QP1);
  store<u32>(d + TXD_PAYLOAD, m);
  store<u32>(d + TXD_LEN, MAD_SIZE);
  if (txPacket(d) == TX_ERROR) { count(Counter.err_cm_tx_failed); return false; }
  count(Counter.cm_mads_sent);
  return true;
}

/** Send the connection's MAD (CN_MAD); with `retransmit`, keep it pending and arm the timer. */
function sendConnMad(c: u32, retransmit: bool): void {
  sendMad(c + CN_MAD, load<u32>(c + CN_REMOTE_IP), c + CN_REMOTE_MAC);
  if (retransmit) {
    store<u32>(c + CN_PENDING, 1);
    armTimer(c);
  }
}

@inline function mtuCode(mtu: u32): u32 { return IB_MTU_256 + (31 - clz(mtu)) - 8; } // 256 → 1 ... 4096 → 5
@inline function mtuBytes(code: u32): u32 { return code >= 1 && code <= 5 ? <u32>256 << (code - 1) : 0; }

function buildReq(c: u32): void {
  const m = c + CN_MAD;
  madHeader(m, CM_ATTR_REQ, load<u64>(c + CN_TID));
  put32(m + REQ_LOCAL_COMM_ID, load<u32>(c + CN_LOCAL_COMM_ID));
  put32(m + REQ_SERVICE_ID, IP_CM_SID_PREFIX_HI);
  put32(m + REQ_SERVICE_ID + 4, IP_CM_SID_PREFIX_LO | (IP_CM_PS_TCP << 16) | (load<u32>(c + CN_PORT) & 0xffff));
  put64(m + REQ_LOCAL_CA_GUID, caGuid());
  put32(m + REQ_LOCAL_QKEY, 0);
  put32(m + REQ_LOCAL_QPN, (load<u32>(c + CN_LOCAL_QPN) << 8) | 1); // responder resources 1
  put32(m + REQ_INITIATOR_DEPTH, 1); // local EECN 0, initiator depth 1
  store<u8>(m + REQ_REMOTE_EECN + 3, <u8>((CM_TIMEOUT_EXP << 3) | (CM_TRANSPORT_RC << 1)));
  put32(m + REQ_STARTING_PSN, (load<u32>(c + CN_LOCAL_PSN) << 8) | (CM_TIMEOUT_EXP << 3) | (load<u32>(c + CN_RETRY_CNT) & 7));
  put16(m + REQ_PKEY, DEFAULT_PKEY);
  store<u8>(m + REQ_MTU, <u8>((mtuCode(load<u32>(c + CN_MTU)) << 4) | (load<u32>(c + CN_RNR_RETRY) & 7)));
  store<u8>(m + REQ_MAX_CM_RETRIES, <u8>((load<u32>(CM_CTRL + CMC_MAX_RETRIES) & 15) << 4));
  put16(m + REQ_PRIMARY_LOCAL_LID, 0xffff); // permissive LID: RoCE has no LIDs
  put16(m + REQ_PRIMARY_REMOTE_LID, 0xffff);
  gidPut(m + REQ_PRIMARY_LOCAL_GID, load<u32>(CM_CTRL + CMC_IP));
  gidPut(m + REQ_PRIMARY_REMOTE_GID, load<u32>(c + CN_REMOTE_IP));
  store<u8>(m + REQ_PRIMARY_HOP_LIMIT, <u8>IP_DEFAULT_TTL);
  store<u8>(m + REQ_PRIMARY_ACK_TIMEOUT, <u8>(18 << 3));
  // Private data: the RDMA IP CM header (Annex A11.6), then the NVMe-oF RDMA REQ data.
  const p = m + REQ_PRIVATE_DATA;
  store<u8>(p + IP_CM_VERSION_OFF, 0);
  store<u8>(p + IP_CM_IPVER_OFF, <u8>IP_CM_IPV4);
  put16(p + IP_CM_SPORT_OFF, load<u32>(c + CN_LOCAL_SPORT));
  store<u32>(p + IP_CM_SRC_IP4_OFF, load<u32>(CM_CTRL + CMC_IP));
  store<u32>(p + IP_CM_DST_IP4_OFF, load<u32>(c + CN_REMOTE_IP));
  const n = p + IP_CM_HDR_LEN;
  store<u16>(n + NVMF_REQ_RECFMT, 0);
  store<u16>(n + NVMF_REQ_QID, <u16>load<u32>(c + CN_QID));
  store<u16>(n + NVMF_REQ_HRQSIZE, <u16>load<u32>(c + CN_HRQSIZE));
  store<u16>(n + NVMF_REQ_HSQSIZE, <u16>load<u32>(c + CN_HSQSIZE));
  store<u16>(n + NVMF_REQ_CNTLID, <u16>load<u32>(c + CN_CNTLID));
}

function buildRep(c: u32): void {
  const m = c + CN_MAD;
  madHeader(m, CM_ATTR_REP, load<u64>(c + CN_TID));
  put32(m + REP_LOCAL_COMM_ID, load<u32>(c + CN_LOCAL_COMM_ID));
  put32(m + REP_REMOTE_COMM_ID, load<u32>(c + CN_REMOTE_COMM_ID));
  put32(m + REP_LOCAL_QKEY, 0);
  put32(m + REP_LOCAL_QPN, load<u32>(c + CN_LOCAL_QPN) << 8);
  put32(m + REP_STARTING_PSN, load<u32>(c + CN_LOCAL_PSN) << 8);
  store<u8>(m + REP_RESPONDER_RESOURCES, 1);
  store<u8>(m + REP_INITIATOR_DEPTH, 1);
  store<u8>(m + REP_TARGET_ACK_DELAY, <u8>(15 << 3));
  store<u8>(m + REP_RNR_RETRY, <u8>((load<u32>(c + CN_RNR_RETRY) & 7) << 5));
  put64(m + REP_LOCAL_CA_GUID, caGuid());
  const n = m + REP_PRIVATE_DATA;
  store<u16>(n + NVMF_REP_RECFMT, 0);
  store<u16>(n + NVMF_REP_CRQSIZE, <u16>load<u32>(c + CN_CRQSIZE));
}

/** A MAD of two comm IDs and nothing else we fill (RTU, DREP), into the scratch MAD m. */
function buildIds(m: u32, attr: u32, c: u32): void {
  madHeader(m, attr, load<u64>(c + CN_TID));
  put32(m + RTU_LOCAL_COMM_ID, load<u32>(c + CN_LOCAL_COMM_ID)); // same offsets in RTU, DREQ, DREP
  put32(m + RTU_REMOTE_COMM_ID, load<u32>(c + CN_REMOTE_COMM_ID));
}

/** REJ of a REQ (no connection kept): to the REQ's sender, its TID and comm ID. */
function sendRej(req: u32, frame: u32, reason: u32): void {
  const s = scratchMad();
  madHeader(s, CM_ATTR_REJ, be64(req + MAD_TID_OFF));
  put32(s + REJ_LOCAL_COMM_ID, 0);
  put32(s + REJ_REMOTE_COMM_ID, be32(req + REQ_LOCAL_COMM_ID));
  store<u8>(s + REJ_MSG_REJECTED, <u8>(REJ_MSG_REQ << 6));
  put16(s + REJ_REASON, reason);
  sendMad(s, load<u32>(frame + ETH_HDR_LEN + IP_SRC_OFF), frame + ETH_SRC_OFF);
  count(Counter.cm_rejects_sent);
}

// A MAD buffer for one-off replies (REJ, DREP, RTU resends): the MAD area of the last slot is
// never used for a connection's own MAD while it serves as scratch, so the table keeps one
// slot back for it.
@inline function scratchMad(): u32 { return conn(CM_MAX_CONNS - 1) + CN_MAD; }

// ---- receive ----

/**
 * A datagram accepted on QP1 (rx.ts deliver): b is its BTH, op its opcode, plen its payload
 * bytes. Returns 0, or the drop Counter (err_cm_*), like every deliver() check.
 */
export function cmRecv(b: u32, op: u32, plen: u32): u32 {
  if (load<u32>(CM_CTRL + CMC_READY) == 0) return 0; // no CM on this card: typed only, as before
  if (plen < MAD_SIZE) return Counter.err_cm_short_mad;
  const m = b + <u32>load<u8>(opEntry(op) + OPT_HDRLEN);
  if (<u32>load<u8>(m + MAD_BASE_VERSION_OFF) != MAD_BASE_VERSION || <u32>load<u8>(m + MAD_CLASS_OFF) != MGMT_CLASS_CM
    || <u32>load<u8>(m + MAD_CLASS_VERSION_OFF) != CM_CLASS_VERSION || <u32>load<u8>(m + MAD_METHOD_OFF) != MAD_METHOD_SEND) {
    return Counter.err_cm_bad_mad;
  }
  count(Counter.cm_mads_received);
  const frame = b - BTH_AT;
  const attr = be16(m + MAD_ATTR_ID_OFF);
  if (attr == CM_ATTR_REQ) return recvReq(m, frame);
  if (attr == CM_ATTR_REP) return recvRep(m, frame);
  if (attr == CM_ATTR_RTU) return recvRtu(m, frame);
  if (attr == CM_ATTR_REJ) return recvRej(m, frame);
  if (attr == CM_ATTR_DREQ) return recvDreq(m, frame);
  if (attr == CM_ATTR_DREP) return recvDrep(m, frame);
  return Counter.err_cm_unknown_attr;
}

function recvReq(m: u32, frame: u32): u32 {
  const srcIp = load<u32>(frame + ETH_HDR_LEN + IP_SRC_OFF);
  const rcid = be32(m + REQ_LOCAL_COMM_ID);
  // A REQ we already answered (our REP was lost): resend the REP; once established, ignore it.
  for (let i: u32 = 0; i < CM_MAX_CONNS - 1; i++) {
    const c = conn(i);
    const cs = load<u32>(c + CN_STATE);
    if (load<u32>(c + CN_ROLE) == CmRole.PASSIVE && cs != CmState.IDLE && cs != CmState.LISTEN
      && load<u32>(c + CN_REMOTE_COMM_ID) == rcid && load<u32>(c + CN_REMOTE_IP) == srcIp) {
      count(Counter.cm_duplicates);
      if (load<u32>(c + CN_STATE) == CmState.REP_SENT) { sendConnMad(c, false); count(Counter.cm_retransmits); }
      return 0;
    }
  }
  // Service ID: RDMA IP CM (prefix 0x0000000001), TCP port space, then the port.
  const sidHi = be32(m + REQ_SERVICE_ID), sidLo = be32(m + REQ_SERVICE_ID + 4);
  const port = sidLo & 0xffff;
  let listener: u32 = 0;
  if (sidHi == IP_CM_SID_PREFIX_HI && (sidLo & 0xffff0000) == (IP_CM_SID_PREFIX_LO | (IP_CM_PS_TCP << 16))) {
    for (let i: u32 = 0; i < CM_MAX_CONNS - 1 && listener == 0; i++) {
      const c = conn(i);
      if (load<u32>(c + CN_STATE) == CmState.LISTEN && load<u32>(c + CN_PORT) == port) listener = c;
    }
  }
  if (listener == 0) { sendRej(m, frame, REJ_REASON_INVALID_SERVICE_ID); return 0; }
  const p = m + REQ_PRIVATE_DATA;
  const mtu = mtuBytes(<u32>load<u8>(m + REQ_MTU) >> 4);
  const tst = (<u32>load<u8>(m + REQ_REMOTE_EECN + 3) >> 1) & 3;
  if (<u32>load<u8>(p + IP_CM_VERSION_OFF) != 0 || (<u32>load<u8>(p + IP_CM_IPVER_OFF) & 0xf0) != IP_CM_IPV4
    || load<u16>(p + IP_CM_HDR_LEN + NVMF_REQ_RECFMT) != 0 || mtu < PMTU_MIN || mtu > PMTU_MAX || tst != CM_TRANSPORT_RC) {
    sendRej(m, frame, REJ_REASON_CONSUMER);
    return Counter.err_cm_bad_private_data;
  }
  const qpn = allocQpn();
  const id = qpn == 0 ? CM_NONE : allocConn();
  if (id == CM_NONE) {
    sendRej(m, frame, REJ_REASON_NO_QP);
    count(Counter.err_cm_no_resources);
    return 0;
  }
  const c = conn(id);
  store<u32>(c + CN_ROLE, CmRole.PASSIVE);
  store<u32>(c + CN_REMOTE_COMM_ID, rcid);
  store<u32>(c + CN_LOCAL_QPN, qpn);
  store<u32>(c + CN_REMOTE_QPN, be32(m + REQ_LOCAL_QPN) >> 8);
  store<u32>(c + CN_REMOTE_PSN, be32(m + REQ_STARTING_PSN) >> 8);
  store<u32>(c + CN_LOCAL_PSN, nextPsn());
  store<u32>(c + CN_MTU, mtu);
  store<u32>(c + CN_PORT, port);
  store<u32>(c + CN_RETRY_CNT, be32(m + REQ_STARTING_PSN) & 7);
  store<u32>(c + CN_RNR_RETRY, <u32>load<u8>(m + REQ_MTU) & 7);
  const n = p + IP_CM_HDR_LEN;
  store<u32>(c + CN_QID, <u32>load<u16>(n + NVMF_REQ_QID));
  store<u32>(c + CN_HRQSIZE, <u32>load<u16>(n + NVMF_REQ_HRQSIZE));
  store<u32>(c + CN_HSQSIZE, <u32>load<u16>(n + NVMF_REQ_HSQSIZE));
  store<u32>(c + CN_CNTLID, <u32>load<u16>(n + NVMF_REQ_CNTLID));
  store<u32>(c + CN_CRQSIZE, <u32>load<u16>(n + NVMF_REQ_HSQSIZE)); // we accept the host's send queue size
  store<u32>(c + CN_REMOTE_IP, srcIp);
  memory.copy(c + CN_REMOTE_MAC, frame + ETH_SRC_OFF, 6);
  store<u64>(c + CN_TID, be64(m + MAD_TID_OFF));
  if (!cmTransition(c, CmState.REQ_RCVD)) { memory.fill(c, 0, CM_CONN_SIZE); sendRej(m, frame, REJ_REASON_NO_QP); return 0; }
  buildRep(c);
  if (!cmTransition(c, CmState.REP_SENT)) { cmTransition(c, CmState.IDLE); sendRej(m, frame, REJ_REASON_NO_QP); return 0; }
  sendConnMad(c, true);
  return 0;
}

/**
 * The connection a REP/RTU/REJ/DREQ/DREP is for: its Remote Comm ID is our local one, and it
 * comes from that connection's peer (or 0: an unknown connection).
 */
function target(m: u32, frame: u32): u32 {
  const c = byLocalCommId(be32(m + REP_REMOTE_COMM_ID));
  return c != 0 && load<u32>(c + CN_REMOTE_IP) == load<u32>(frame + ETH_HDR_LEN + IP_SRC_OFF) ? c : 0;
}

function recvRep(m: u32, frame: u32): u32 {
  const c = target(m, frame);
  if (c == 0 || load<u32>(c + CN_ROLE) != CmRole.ACTIVE) return Counter.err_cm_unknown_conn;
  const st = load<u32>(c + CN_STATE);
  if (st == CmState.ESTABLISHED) {
    // Our RTU was lost and the peer resent its REP: resend the RTU.
    count(Counter.cm_duplicates);
    const s = scratchMad();
    buildIds(s, CM_ATTR_RTU, c);
    sendMad(s, load<u32>(c + CN_REMOTE_IP), c + CN_REMOTE_MAC);
    count(Counter.cm_retransmits);
    return 0;
  }
  if (st != CmState.REQ_SENT) { count(Counter.cm_duplicates); return 0; }
  store<u32>(c + CN_REMOTE_COMM_ID, be32(m + REP_LOCAL_COMM_ID));
  store<u32>(c + CN_REMOTE_QPN, (be32(m + REP_LOCAL_QPN) >> 8) & QPN_MASK);
  store<u32>(c + CN_REMOTE_PSN, (be32(m + REP_STARTING_PSN) >> 8) & PSN_MASK);
  store<u32>(c + CN_CRQSIZE, <u32>load<u16>(m + REP_PRIVATE_DATA + NVMF_REP_CRQSIZE));
  disarm(c);
  if (!cmTransition(c, CmState.REP_RCVD)) return Counter.err_cm_qp_setup;
  buildIds(c + CN_MAD, CM_ATTR_RTU, c);
  sendConnMad(c, false);
  cmTransition(c, CmState.ESTABLISHED);
  return 0;
}

function recvRtu(m: u32, frame: u32): u32 {
  const c = target(m, frame);
  if (c == 0 || load<u32>(c + CN_ROLE) != CmRole.PASSIVE) return Counter.err_cm_unknown_conn;
  if (load<u32>(c + CN_STATE) != CmState.REP_SENT) { count(Counter.cm_duplicates); return 0; }
  cmTransition(c, CmState.ESTABLISHED);
  return 0;
}

function recvRej(m: u32, frame: u32): u32 {
  const c = target(m, frame);
  if (c == 0) return Counter.err_cm_unknown_conn;
  count(Counter.cm_rejects_received);
  store<u32>(c + CN_REJ_REASON, be16(m + REJ_REASON));
  const st = load<u32>(c + CN_STATE);
  if (st == CmState.REQ_SENT) cmTransition(c, CmState.REJECTED);
  else if (st == CmState.REP_SENT) { disarm(c); cmTransition(c, CmState.TIMEWAIT); } // passive: nobody to tell, free it
  else count(Counter.cm_duplicates);
  return 0;
}

function recvDreq(m: u32, frame: u32): u32 {
  const c = target(m, frame);
  if (c == 0) return Counter.err_cm_unknown_conn;
  const st = load<u32>(c + CN_STATE);
  if (st == CmState.ESTABLISHED || st == CmState.REP_SENT || st == CmState.DISCONNECTING) {
    disarm(c);
    cmTransition(c, CmState.TIMEWAIT);
  } else if (st != CmState.TIMEWAIT) {
    return Counter.err_cm_unknown_conn;
  } else count(Counter.cm_duplicates); // our DREP was lost: answer again
  const s = scratchMad();
  buildIds(s, CM_ATTR_DREP, c);
  sendMad(s, load<u32>(frame + ETH_HDR_LEN + IP_SRC_OFF), frame + ETH_SRC_OFF);
  return 0;
}

function recvDrep(m: u32, frame: u32): u32 {
  const c = target(m, frame);
  if (c == 0) return Counter.err_cm_unknown_conn;
  if (load<u32>(c + CN_STATE) != CmState.DISCONNECTING) { count(Counter.cm_duplicates); return 0; }
  disarm(c);
  cmTransition(c, CmState.TIMEWAIT);
  return 0;
}

/**
 * A request packet was accepted on QP qpn while it was still in RTR (resp.ts): on the passive
 * side the peer only sends once it has our REP, so the RTU is lost or late. As IBTA vol. 1
 * §12.6 allows ("communication established"), treat it as the RTU: the connection waiting in
 * REP_SENT becomes ESTABLISHED and its QP goes to RTS, so it can answer now.
 */
export function cmCommEstablished(qpn: u32): void {
  for (let i: u32 = 0; i < CM_MAX_CONNS - 1; i++) {
    const c = conn(i);
    if (load<u32>(c + CN_STATE) != CmState.REP_SENT || load<u32>(c + CN_LOCAL_QPN) != qpn) continue;
    disarm(c);
    cmTransition(c, CmState.ESTABLISHED);
    return;
  }
}

// ---- host entry points (setup time, and one poll per step) ----

/**
 * Our addresses (IPv4 as wire bytes a.b.c.d loaded little-endian; MAC as its first two and last
 * four bytes, big-endian) and QP1 set up as the GSI UD QP. Returns 0 or the Counter of the refusal.
 */
export function cmInit(ipWire: u32, macHi: u32, macLo: u32): u32 {
  memory.fill(CM_CTRL, 0, 128);
  memory.fill(CM_CONN_BASE, 0, CM_MAX_CONNS * CM_CONN_SIZE);
  const mac = CM_CTRL + CMC_MAC;
  store<u8>(mac, <u8>(macHi >> 8)); store<u8>(mac + 1, <u8>macHi);
  put32(mac + 2, macLo);
  store<u32>(CM_CTRL + CMC_IP, ipWire);
  store<u32>(CM_CTRL + CMC_TIMEOUT, DEFAULT_TIMEOUT_NS);
  store<u32>(CM_CTRL + CMC_MAX_RETRIES, DEFAULT_MAX_RETRIES);
  store<u32>(CM_CTRL + CMC_PRNG, (ipWire ^ 0x9e3779b9) | 1);
  store<u32>(CM_CTRL + CMC_NEXT_GEN, 0);
  cmSetRcDefaults(RC_DEFAULT_TIMEOUT_NS, RC_DEFAULT_ACK_EVERY, RC_DEFAULT_RNR, RC_SQ_DEPTH);
  qpModify(QP1, QpState.RESET, 0, 0, 0);
  let r = qpModify(QP1, QpState.INIT, Transport.UD, GSI_QKEY, 0);
  if (r == 0) r = qpModify(QP1, QpState.RTR, PMTU_MAX, 0, 0);
  if (r == 0) r = qpModify(QP1, QpState.RTS, 0, 0, 0);
  if (r != 0) return r;
  store<u32>(CM_CTRL + CMC_READY, 1);
  return 0;
}

/** Retransmit timeout (ns of virtual time) and retransmits before giving up. */
export function cmConfig(timeoutNs: u32, maxRetries: u32): void {
  store<u32>(CM_CTRL + CMC_TIMEOUT, timeoutNs);
  store<u32>(CM_CTRL + CMC_MAX_RETRIES, maxRetries);
}

/** Accept connections to `port` (passive side). Returns the listener's id, or CM_NONE. */
export function cmListen(port: u32): u32 {
  if (load<u32>(CM_CTRL + CMC_READY) == 0 || port > 0xffff) return CM_NONE;
  const id = allocConn();
  if (id == CM_NONE) return CM_NONE;
  const c = conn(id);
  store<u32>(c + CN_ROLE, CmRole.PASSIVE);
  store<u32>(c + CN_PORT, port);
  cmTransition(c, CmState.LISTEN);
  return id;
}

/**
 * Connect to `port` of the peer (ipWire, MAC macHi:macLo) for NVMe-oF queue `qid` with the REQ
 * private data {qid, hrqsize, hsqsize, cntlid}, path MTU `mtu`: allocates a QP (INIT), sends the
 * REQ. Returns the connection id (poll rdmaCmState), or CM_NONE.
 */
export function cmConnect(port: u32, qid: u32, hrqsize: u32, hsqsize: u32, cntlid: u32, mtu: u32, ipWire: u32, macHi: u32, macLo: u32): u32 {
  if (load<u32>(CM_CTRL + CMC_READY) == 0 || port > 0xffff || mtu < PMTU_MIN || mtu > PMTU_MAX || popcnt(mtu) != 1) return CM_NONE;
  const qpn = allocQpn();
  if (qpn == 0) { count(Counter.err_cm_no_resources); return CM_NONE; }
  const id = allocConn();
  if (id == CM_NONE) return CM_NONE;
  const c = conn(id);
  store<u32>(c + CN_ROLE, CmRole.ACTIVE);
  store<u32>(c + CN_LOCAL_QPN, qpn);
  store<u32>(c + CN_LOCAL_PSN, nextPsn());
  store<u32>(c + CN_MTU, mtu);
  store<u32>(c + CN_PORT, port);
  store<u32>(c + CN_QID, qid & 0xffff);
  store<u32>(c + CN_HRQSIZE, hrqsize & 0xffff);
  store<u32>(c + CN_HSQSIZE, hsqsize & 0xffff);
  store<u32>(c + CN_CNTLID, cntlid & 0xffff);
  store<u32>(c + CN_RETRY_CNT, QP_RETRY);
  store<u32>(c + CN_RNR_RETRY, QP_RNR_RETRY);
  store<u32>(c + CN_LOCAL_SPORT, CM_EPHEMERAL_PORT + id);
  store<u32>(c + CN_REMOTE_IP, ipWire);
  const mac = c + CN_REMOTE_MAC;
  store<u8>(mac, <u8>(macHi >> 8)); store<u8>(mac + 1, <u8>macHi);
  put32(mac + 2, macLo);
  // Transaction ID: class-agent high word 1, the local comm ID below (unique per connection).
  store<u64>(c + CN_TID, (<u64>1 << 32) | <u64>load<u32>(c + CN_LOCAL_COMM_ID));
  if (!cmTransition(c, CmState.REQ_SENT)) { memory.fill(c, 0, CM_CONN_SIZE); return CM_NONE; }
  buildReq(c);
  sendConnMad(c, true);
  return id;
}

/** Disconnect an established connection (DREQ, retransmitted until the DREP). 0 or CM_NONE. */
export function cmDisconnect(id: u32): u32 {
  if (id >= CM_MAX_CONNS - 1) return CM_NONE;
  const c = conn(id);
  if (load<u32>(c + CN_STATE) != CmState.ESTABLISHED) { count(Counter.err_cm_bad_transition); return CM_NONE; }
  const m = c + CN_MAD;
  buildIds(m, CM_ATTR_DREQ, c);
  put32(m + DREQ_REMOTE_QPN, load<u32>(c + CN_REMOTE_QPN) << 8);
  store<u32>(c + CN_RETRIES, 0);
  cmTransition(c, CmState.DISCONNECTING);
  sendConnMad(c, true);
  return 0;
}

/** Free a connection that ended (REJECTED, TIMED_OUT) or a listener. 0 or CM_NONE. */
export function cmRelease(id: u32): u32 {
  if (id >= CM_MAX_CONNS - 1) return CM_NONE;
  return cmTransition(conn(id), CmState.IDLE) ? 0 : CM_NONE;
}

/**
 * Timers at virtual time `now` (ns): a pending REQ / REP / DREQ whose deadline passed is sent
 * again, up to the retry limit, then the connection gives up (counted: TIMED_OUT, or TIMEWAIT
 * for a DREQ); a TIMEWAIT connection whose deadline passed is freed. Returns MADs resent.
 */
export function cmPoll(t: f64): u32 {
  store<f64>(CM_CTRL + CMC_NOW, t);
  if (load<u32>(CM_CTRL + CMC_READY) == 0) return 0;
  let sent: u32 = 0;
  for (let i: u32 = 0; i < CM_MAX_CONNS - 1; i++) {
    const c = conn(i);
    const dl = load<f64>(c + CN_DEADLINE);
    if (dl == 0 || dl > t) continue;
    const st = load<u32>(c + CN_STATE);
    if (st == CmState.TIMEWAIT) { cmTransition(c, CmState.IDLE); continue; }
    if (load<u32>(c + CN_PENDING) == 0) { store<f64>(c + CN_DEADLINE, 0); continue; }
    const r = load<u32>(c + CN_RETRIES);
    if (r >= load<u32>(CM_CTRL + CMC_MAX_RETRIES)) {
      count(Counter.cm_give_ups);
      disarm(c);
      // The active side keeps TIMED_OUT for its host to see (rdmaCmRelease frees it); a passive
      // connection and a DREQ nobody answered go through TIMEWAIT and free themselves.
      cmTransition(c, st == CmState.DISCONNECTING || load<u32>(c + CN_ROLE) == CmRole.PASSIVE ? CmState.TIMEWAIT : CmState.TIMED_OUT);
      continue;
    }
    store<u32>(c + CN_RETRIES, r + 1);
    count(Counter.cm_retransmits);
    sendConnMad(c, true);
    sent++;
  }
  return sent;
}

@inline export function cmConnAddr(id: u32): u32 { return id < CM_MAX_CONNS ? conn(id) : 0; }
export function cmState(id: u32): u32 { return id < CM_MAX_CONNS ? load<u32>(conn(id) + CN_STATE) : CmState.IDLE; }
