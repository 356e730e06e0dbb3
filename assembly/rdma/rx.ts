// Receive path: every frame in the RX ring is parsed, typed and ICRC-checked in one batch
// (rxPoll, one crossing per batch). Bad framing becomes a counted drop by reason (err_rdma_*);
// every frame gets a result log entry (wire.ts RXL_*) that `wasm-dpu replay` prints.
// Checks, in order: slot length; Ethernet type; IPv4 version, IHL, header checksum, total
// length, fragments, protocol; UDP port 4791 and length; ICRC (A17.3.3); BTH TVer; opcode
// (opcode table); header, pad and payload lengths (§9.5); then, for a QP that is past RESET,
// transport, UD Q_Key and RC sequence (seq.ts).
import { Counter } from "../counters";
import { count, countN } from "../stats";
import { NET_FRAME_MAX, NET_SLOT_HDR, NET_SLOT_LEN_OFF, RDMA_CTRL, RXLOG_BASE, RXLOG_ENTRIES, RXLOG_ENTRY_SIZE, MAX_QPS } from "../memmap";
import { rxPending, rxCorrupt, rxHead, rxRelease, rxSlotAddr } from "../net/ring";
import {
  ETH_HDR_LEN, ETH_TYPE_OFF, ETHERTYPE_IPV4, IP_HDR_LEN, IP_VER_IHL_OFF, IP_TOTLEN_OFF, IP_FRAG_OFF, IP_MF_OFFSET_MASK,
  IP_PROTO_OFF, IPPROTO_UDP, UDP_HDR_LEN, UDP_DPORT_OFF, UDP_LEN_OFF, ROCEV2_UDP_PORT, BTH_LEN, BTH_TVER_MASK,
  BTH_PAD_MASK, BTH_PAD_SHIFT, BTH_ACKREQ, BTH_OPCODE_OFF, BTH_FLAGS_OFF, BTH_DQP_OFF, BTH_PSN_OFF, QPN_MASK, RETH_DMALEN_OFF, PSN_MASK, ICRC_LEN, OPF_PAYLOAD, OPF_RC, OPF_UD, OPT_HDRLEN, OPT_FLAGS,
  OPT_POS, OPT_CLASS, OPT_VALID, OPT_RETH, OPT_DETH, Transport, OpClass, RXL_FRAME, RXL_OPCODE, RXL_POS, RXL_FLAGS, RXL_PAD,
  RXL_DQP, RXL_PSN, RXL_REASON, RXL_PAYLOAD_LEN, RXL_CLASS, RXL_SLOT, RXF_ICRC_OK, RXF_ACCEPTED, RXF_BTH,
  RXF_ICRC_CHECKED, RXF_ACKREQ, QP1, RC_LOG_PROD, RC_LOG_CONS, RC_RX_FRAMES, RC_FLAGS, RCF_NO_ICRC_CHECK, RCF_NO_LOG,
} from "./wire";
import { opEntry } from "./opcodes";
import { ipSum, be16, be32 } from "./headers";
import { icrcCompute, BTH_AT } from "./frame";
import { seqCheck } from "./seq";
import { rcOn } from "./rc";
import { rcDeliver } from "./resp";
import { cmRecv } from "./cm";
import { qpAddr, QpState, QP_STATE, QP_TRANSPORT, QP_MTU, QP_RQ, QP_RSP, QP_QKEY } from "./qp";

const MIN_FRAME: u32 = BTH_AT + BTH_LEN + ICRC_LEN;
const MIN_IP_LEN: u32 = IP_HDR_LEN + UDP_HDR_LEN + BTH_LEN + ICRC_LEN;

/**
 * Checks that need only the Ethernet/IP/UDP framing. Returns 0, or the drop Counter.
 */
@inline function checkFraming(f: u32, len: u32): u32 {
  if (len > NET_FRAME_MAX) return Counter.err_rdma_oversized;
  if (len < MIN_FRAME) return Counter.err_rdma_runt;
  if (be16(f + ETH_TYPE_OFF) != ETHERTYPE_IPV4) return Counter.err_rdma_bad_ethertype;
  const ip = f + ETH_HDR_LEN;
  const vihl = <u32>load<u8>(ip + IP_VER_IHL_OFF);
  if ((vihl >> 4) != 4) return Counter.err_rdma_bad_ip_version;
  if ((vihl & 15) != 5) return Counter.err_rdma_bad_ihl;
  if (ipSum(ip) != 0xffff) return Counter.err_rdma_bad_ip_checksum;
  const ipLen = be16(ip + IP_TOTLEN_OFF);
  if (ipLen < MIN_IP_LEN || ipLen > len - ETH_HDR_LEN) return Counter.err_rdma_bad_ip_length;
  if ((be16(ip + IP_FRAG_OFF) & IP_MF_OFFSET_MASK) != 0) return Counter.err_rdma_ip_fragment;
  if (<u32>load<u8>(ip + IP_PROTO_OFF) != IPPROTO_UDP) return Counter.err_rdma_not_udp;
  const udp = ip + IP_HDR_LEN;
  if (be16(udp + UDP_DPORT_OFF) != ROCEV2_UDP_PORT) return Counter.err_rdma_bad_udp_port;
  if (be16(udp + UDP_LEN_OFF) != ipLen - IP_HDR_LEN) return Counter.err_rdma_bad_udp_length;
  return 0;
}

/**
 * Parse, type and check up to `budget` frames from the RX ring, logging each. Returns the
 * number of frames taken. Accepted packets are counted (rdma_rx_accepted); the layers above
 * (responder, NIC distributor) take them from here.
 */
export function rxPoll(budget: u32): u32 {
  const ctrl = RDMA_CTRL;
  const flagsCtl = load<u32>(ctrl + RC_FLAGS);
  const pend = rxPending();
  if (pend == 0 && rxCorrupt()) { count(Counter.err_rdma_rx_ring_corrupt); return 0; }
  const n = pend < budget ? pend : budget;
  const head = rxHead();
  let frameNo = load<u32>(ctrl + RC_RX_FRAMES);
  let logProd = load<u32>(ctrl + RC_LOG_PROD);
  let accepted: u32 = 0;
  for (let k: u32 = 0; k < n; k++) {
    const slot = head + k;
    const s = rxSlotAddr(slot);
    const len = load<u32>(s + NET_SLOT_LEN_OFF);
    const f = s + NET_SLOT_HDR;
    frameNo++;
    let reason = checkFraming(f, len);
    let flags: u32 = 0, op: u32 = 0, pos: u32 = 0, cls: u32 = 0, dqp: u32 = 0, psn: u32 = 0, pad: u32 = 0, plen: u32 = 0;
    if (reason == 0) {
      const ipLen = be16(f + ETH_HDR_LEN + IP_TOTLEN_OFF);
      const b = f + BTH_AT;
      op = <u32>load<u8>(b + BTH_OPCODE_OFF);
      const bf = <u32>load<u8>(b + BTH_FLAGS_OFF);
      pad = (bf & BTH_PAD_MASK) >> BTH_PAD_SHIFT;
      dqp = be32(b + BTH_DQP_OFF) & QPN_MASK;
      const pw = be32(b + BTH_PSN_OFF);
      psn = pw & PSN_MASK;
      flags = RXF_BTH | ((pw & BTH_ACKREQ) != 0 ? RXF_ACKREQ : 0);
      if ((flagsCtl & RCF_NO_ICRC_CHECK) == 0) {
        flags |= RXF_ICRC_CHECKED;
        if (icrcCompute(f, ipLen) == load<u32>(f + ETH_HDR_LEN + ipLen - ICRC_LEN)) flags |= RXF_ICRC_OK;
        else reason = Counter.err_rdma_bad_icrc;
      }
      const e = opEntry(op);
      if (load<u8>(e + OPT_VALID) != 0) {
        pos = <u32>load<u8>(e + OPT_POS);
        cls = <u32>load<u8>(e + OPT_CLASS);
      }
      if (reason == 0) {
        const room = <i32>(ipLen - IP_HDR_LEN - UDP_HDR_LEN - ICRC_LEN) - <i32>load<u8>(e + OPT_HDRLEN);
        const opf = <u32>load<u16>(e + OPT_FLAGS);
        if ((bf & BTH_TVER_MASK) != 0) reason = Counter.err_rdma_bad_tver;
        else if (load<u8>(e + OPT_VALID) == 0) reason = Counter.err_rdma_unknown_opcode;
        else if (room < 0) reason = Counter.err_rdma_bad_length;
        else if ((room & 3) != 0 || <u32>room < pad) reason = Counter.err_rdma_bad_pad;
        else if ((opf & OPF_PAYLOAD) == 0 && room != 0) reason = pad != 0 ? Counter.err_rdma_bad_pad : Counter.err_rdma_bad_length;
        else {
          plen = <u32>room - pad;
          reason = deliver(op, opf, b, dqp, psn, plen);
        }
      }
    }
    if (reason == 0) { flags |= RXF_ACCEPTED; accepted++; }
    else count(<Counter>reason); // a drop reason, or rdma_rx_duplicate
    if ((flagsCtl & RCF_NO_LOG) == 0) {
      if (logProd - load<u32>(ctrl + RC_LOG_CONS) >= RXLOG_ENTRIES) {
        store<u32>(ctrl + RC_LOG_CONS, logProd - RXLOG_ENTRIES + 1); // drop the oldest entry
        count(Counter.rdma_rxlog_overrun);
      }
      const l = RXLOG_BASE + (logProd % RXLOG_ENTRIES) * RXLOG_ENTRY_SIZE;
      store<u32>(l + RXL_FRAME, frameNo);
      store<u8>(l + RXL_OPCODE, <u8>op);
      store<u8>(l + RXL_POS, <u8>pos);
      store<u8>(l + RXL_FLAGS, <u8>flags);
      store<u8>(l + RXL_PAD, <u8>pad);
      store<u32>(l + RXL_DQP, dqp);
      store<u32>(l + RXL_PSN, psn);
      store<u32>(l + RXL_REASON, reason);
      store<u32>(l + RXL_PAYLOAD_LEN, plen);
      store<u32>(l + RXL_CLASS, cls);
      store<u32>(l + RXL_SLOT, slot);
      logProd++;
    }
  }
  rxRelease(n);
  store<u32>(ctrl + RC_RX_FRAMES, frameNo);
  store<u32>(ctrl + RC_LOG_PROD, logProd);
  countN(Counter.rdma_rx_frames, <u64>n);
  countN(Counter.rdma_rx_accepted, <u64>accepted);
  return n;
}

/**
 * A well-formed packet for dest QP dqp. A QP past RESET checks transport and sequence; a QP
 * still in RESET (nothing configured it) only types the packet. Returns 0 or the reason.
 */
@inline function deliver(op: u32, opf: u32, b: u32, dqp: u32, psn: u32, plen: u32): u32 {
  if (dqp >= MAX_QPS) return 0;
  const q = qpAddr(dqp);
  const st = load<u32>(q + QP_STATE);
  if (st == QpState.RESET) return 0;
  if (st == QpState.INIT || st == QpState.ERR) return Counter.err_rdma_bad_qp;
  const t = load<u32>(q + QP_TRANSPORT);
  if (t == Transport.UD) {
    if ((opf & OPF_UD) == 0) return Counter.err_rdma_wrong_transport;
    // A datagram whose Q_Key differs from the QP's is dropped (§10.2.4.1 Q_Key checks).
    if (be32(b + <u32>load<u8>(opEntry(op) + OPT_DETH)) != load<u32>(q + QP_QKEY)) return Counter.err_rdma_bad_qkey;
    return dqp == QP1 ? cmRecv(b, op, plen) : 0; // CM MADs on the GSI QP (rdma/cm.ts)
  }
  if ((opf & OPF_RC) == 0) return Counter.err_rdma_wrong_transport;
  if (rcOn(dqp)) return rcDeliver(dqp, op, b, psn, plen); // the RC engine's QPs (rdma/resp.ts, req.ts)
  const cls = <u32>load<u8>(opEntry(op) + OPT_CLASS);
  const mtu = load<u32>(q + QP_MTU);
  if (cls == OpClass.READ_RESPONSE) {
    if (st != QpState.RTS) return Counter.err_rdma_bad_qp;
    return seqCheck(q + QP_RSP, op, psn, plen, mtu, 1);
  }
  if (cls == OpClass.ACK || cls == OpClass.ATOMIC_ACK || cls == OpClass.CNP) return 0; // the completer's, or congestion control's
  let readPsns: u32 = 1;
  if (cls == OpClass.READ_REQUEST) {
    const dl = be32(b + <u32>load<u8>(opEntry(op) + OPT_RETH) + RETH_DMALEN_OFF);
    readPsns = dl == 0 ? 1 : (dl + mtu - 1) / mtu;
  }
  return seqCheck(q + QP_RQ, op, psn, plen, mtu, readPsns);
}
