// Representative RoCEv2 frames (about 20) for captures and decoder interop tests: the CM
// datagram to QP1, NVMe-oF command and response capsules as SEND ONLY, RDMA WRITE and READ in
// all positions, ACK / NAK / RNR NAK, immediate and invalidate variants. Built by the real
// transmit path into the TX ring, so a capture of them shows what the firmware sends.
import { RDMA_SCRATCH } from "../memmap";
import {
  Op, OpClass, TXD_SIZE, TXD_DST_MAC, TXD_SRC_MAC, TXD_SRC_IP, TXD_DST_IP, TXD_SPORT, TXD_TTL, TXD_OPCODE,
  TXD_BTH_FLAGS, TXD_PKEY, TXD_DQP, TXD_PSN, TXD_ACKREQ, TXD_RETH_VA, TXD_RETH_RKEY, TXD_RETH_LEN, TXD_AETH, TXD_IMM,
  TXD_IETH_RKEY, TXD_DETH_QKEY, TXD_DETH_SRCQP, TXD_PAYLOAD, TXD_LEN, TXD_MTU, TXD_IMM_FLAG, BTH_SE, GSI_QKEY, QP1,
  AETH_NAK, AETH_RNR_NAK, AETH_CREDIT_INVALID, NAK_PSN_SEQ_ERROR, ROCEV2_SPORT_BASE, DEFAULT_PKEY, IP_DEFAULT_TTL,
} from "./wire";
import { put16, put32, put64 } from "./headers";
import { txPacket, txMessage, TX_ERROR } from "./tx";

const D: u32 = RDMA_SCRATCH + 64 + TXD_SIZE; // a descriptor of our own, after the host's
const HOST_QP: u32 = 0x000011;
const TARGET_QP: u32 = 0x000012;

function base(toTarget: bool, payload: u32, len: u32): void {
  memory.fill(D, 0, TXD_SIZE);
  // Host 02:00:00:00:00:01 / 10.0.0.1, target 02:00:00:00:00:02 / 10.0.0.2.
  const h: u64 = 0x020000000001, t: u64 = 0x020000000002;
  for (let i: u32 = 0; i < 6; i++) {
    store<u8>(D + TXD_DST_MAC + i, <u8>((toTarget ? t : h) >> (<u64>(40 - 8 * i))));
    store<u8>(D + TXD_SRC_MAC + i, <u8>((toTarget ? h : t) >> (<u64>(40 - 8 * i))));
  }
  store<u32>(D + TXD_SRC_IP, toTarget ? 0x0100000a : 0x0200000a); // 10.0.0.1 / 10.0.0.2 as wire bytes
  store<u32>(D + TXD_DST_IP, toTarget ? 0x0200000a : 0x0100000a);
  store<u16>(D + TXD_SPORT, <u16>(ROCEV2_SPORT_BASE | (toTarget ? HOST_QP : TARGET_QP)));
  store<u8>(D + TXD_TTL, <u8>IP_DEFAULT_TTL);
  store<u16>(D + TXD_PKEY, <u16>DEFAULT_PKEY);
  store<u32>(D + TXD_DQP, toTarget ? TARGET_QP : HOST_QP);
  store<u32>(D + TXD_PAYLOAD, payload);
  store<u32>(D + TXD_LEN, len);
  store<u32>(D + TXD_MTU, 1024);
}

@inline function pkt(op: u32, psn: u32, ackreq: bool): u32 {
  store<u8>(D + TXD_OPCODE, <u8>op);
  store<u32>(D + TXD_PSN, psn);
  store<u32>(D + TXD_ACKREQ, ackreq ? 1 : 0);
  return txPacket(D) == TX_ERROR ? 0 : 1;
}

@inline function msg(cls: u32, psn: u32, ackreq: bool): u32 {
  store<u8>(D + TXD_OPCODE, <u8>cls);
  store<u32>(D + TXD_PSN, psn);
  store<u32>(D + TXD_ACKREQ, ackreq ? 1 : 0);
  const n = txMessage(D);
  return n == TX_ERROR ? 0 : n;
}

/**
 * Put the sample frames into the TX ring; `scratch` is a card offset with 8 KiB the payloads
 * may be written to (e.g. a guest window). Returns the number of frames.
 */
export function sampleFrames(scratch: u32): u32 {
  for (let i: u32 = 0; i < 8192; i++) store<u8>(scratch + i, <u8>(i * 7 + 1));
  let n: u32 = 0;
  // 1. CM MAD to QP1 (UD SEND ONLY + DETH, Q_Key 0x80010000): MAD header of a CM REQ (class 0x07).
  const mad = scratch + 0x1800;
  memory.fill(mad, 0, 256);
  store<u8>(mad, 1); store<u8>(mad + 1, 0x07); store<u8>(mad + 2, 2); store<u8>(mad + 3, 0x03); // base v1, CM, v2, Send
  put64(mad + 8, 0x0000000100000001); // transaction ID
  put16(mad + 16, 0x0010); // ConnectRequest
  base(true, mad, 256);
  store<u32>(D + TXD_DQP, QP1);
  store<u32>(D + TXD_DETH_QKEY, GSI_QKEY);
  store<u32>(D + TXD_DETH_SRCQP, QP1);
  n += pkt(Op.UD_SEND_ONLY, 0, false);
  // 2. NVMe-oF command capsule: a Read SQE with a keyed SGL data block descriptor (SEND ONLY, SE).
  const sqe = scratch + 0x1c00;
  memory.fill(sqe, 0, 64);
  store<u32>(sqe, 0x00014002); // opcode 02h Read, PSDT 01b (SGL), CID 1
  store<u32>(sqe + 4, 1); // NSID
  store<u64>(sqe + 24, 0x10000); // SGL: address
  store<u32>(sqe + 32, 4096 | (0x1234 << 24)); // length u24 | key byte 0
  store<u32>(sqe + 36, 0x40000012); // key bytes 1..3 | identifier 0x40 (keyed data block)
  store<u32>(sqe + 48, 7); // NLB 0-based = 8 blocks of 512
  base(true, sqe, 64);
  store<u8>(D + TXD_BTH_FLAGS, <u8>BTH_SE);
  n += pkt(Op.RC_SEND_ONLY, 100, true);
  // 3. The target RDMA WRITEs the data: FIRST / MIDDLE / LAST at MTU 1024, then ACK from the host.
  base(false, scratch, 2500);
  store<u64>(D + TXD_RETH_VA, 0x10000);
  store<u32>(D + TXD_RETH_RKEY, 0x12341234);
  n += msg(OpClass.WRITE, 200, false);
  // 4. NVMe-oF response capsule (16-byte CQE) as SEND ONLY with SE.
  const cqe = scratch + 0x1e00;
  memory.fill(cqe, 0, 16);
  store<u32>(cqe + 12, 0x00010001); // CID 1, phase 1, status 0
  base(false, cqe, 16);
  store<u8>(D + TXD_BTH_FLAGS, <u8>BTH_SE);
  n += pkt(Op.RC_SEND_ONLY, 203, true);
  base(true, 0, 0);
  store<u32>(D + TXD_AETH, (AETH_CREDIT_INVALID << 24) | 1);
  n += pkt(Op.RC_ACK, 203, false);
  // 5. A host write done by RDMA READ: READ REQUEST, READ RESPONSE FIRST / MIDDLE / LAST.
  base(false, 0, 0);
  store<u64>(D + TXD_RETH_VA, 0x20000);
  store<u32>(D + TXD_RETH_RKEY, 0x56785678);
  store<u32>(D + TXD_RETH_LEN, 3000);
  n += pkt(Op.RC_READ_REQUEST, 204, true);
  base(true, scratch, 3000);
  store<u32>(D + TXD_AETH, (AETH_CREDIT_INVALID << 24) | 1);
  n += msg(OpClass.READ_RESPONSE, 204, false);
  // 6. READ RESPONSE ONLY (a 512-byte read).
  base(true, scratch + 3000, 512);
  store<u32>(D + TXD_AETH, (AETH_CREDIT_INVALID << 24) | 2);
  n += pkt(Op.RC_READ_RESPONSE_ONLY, 207, false);
  // 7. NAK (PSN sequence error) and RNR NAK.
  base(true, 0, 0);
  store<u32>(D + TXD_AETH, ((AETH_NAK | NAK_PSN_SEQ_ERROR) << 24) | 2);
  n += pkt(Op.RC_ACK, 208, false);
  store<u32>(D + TXD_AETH, ((AETH_RNR_NAK | 0x0e) << 24) | 2);
  n += pkt(Op.RC_ACK, 208, false);
  // 8. A 2100-byte SEND: FIRST / MIDDLE / LAST (in-capsule data of a write).
  base(true, scratch, 2100);
  n += msg(OpClass.SEND, 101, true);
  // 9. WRITE ONLY, WRITE ONLY with immediate, SEND ONLY with immediate, SEND ONLY with invalidate.
  base(false, scratch, 512);
  store<u64>(D + TXD_RETH_VA, 0x30000);
  store<u32>(D + TXD_RETH_RKEY, 0x9abc9abc);
  n += pkt(Op.RC_WRITE_ONLY, 209, true);
  store<u32>(D + TXD_IMM, 0xdeadbeef);
  store<u32>(D + TXD_IMM_FLAG, 1);
  n += pkt(Op.RC_WRITE_ONLY_IMM, 210, true);
  base(true, scratch, 13);
  store<u32>(D + TXD_IMM, 0x01020304);
  n += pkt(Op.RC_SEND_ONLY_IMM, 104, true);
  base(false, cqe, 16);
  store<u32>(D + TXD_IETH_RKEY, 0x12341234);
  n += pkt(Op.RC_SEND_ONLY_INV, 211, true);
  // 10. A final ACK of everything, and a short UD datagram (pad 1).
  base(true, 0, 0);
  store<u32>(D + TXD_AETH, (AETH_CREDIT_INVALID << 24) | 5);
  n += pkt(Op.RC_ACK, 211, false);
  base(true, scratch, 3);
  store<u32>(D + TXD_DQP, 0x20);
  store<u32>(D + TXD_DETH_QKEY, 0x11111111);
  store<u32>(D + TXD_DETH_SRCQP, 0x21);
  n += pkt(Op.UD_SEND_ONLY, 1, false);
  return n;
}
