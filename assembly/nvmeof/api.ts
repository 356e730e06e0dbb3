// Exported entry points of the NVMe-oF host in the DPU (nvmeof/host.ts; layouts in defs.ts).
// Setup calls only: the per-I/O path runs inside poll() (blkSubmit → capsule, reap → completion).
import { queueSetup, queueLive, queueTeardown, queueState, setGuestKey, setDiskQueue, setDiskMaxTransfer, submitRaw, rawResult,
  queueHold, queueReconnect, queueDrop, queueFailHeld, queueAddr } from "./host";

/**
 * Fabric queue q uses RC QP qpn (ESTABLISHED by the CM, RC engine on) as NVMe-oF queue qid with
 * at most `depth` capsules in flight: its slots become memory regions, one receive per response
 * buffer is posted; state CONNECTING. Returns 0 or the Counter of the refusal.
 */
export function nvmfQueueSetup(q: u32, qpn: u32, qid: u32, depth: u32): u32 { return queueSetup(q, qpn, qid, depth); }
/**
 * CONNECTING → LIVE once the host's Fabrics Connect succeeded; RESUMING → LIVE after a
 * reconnect, which issues the held requests again (new capsules and CIDs). 0 or a Counter.
 */
export function nvmfQueueLive(q: u32): u32 { return queueLive(q); }
/**
 * on = 1: a lost connection (QP in ERR, flushed or failed work) moves LIVE queue q to
 * RECONNECTING and holds its requests for nvmfQueueReconnect instead of failing them. 0 or a Counter.
 */
export function nvmfQueueHold(q: u32, on: u32): u32 { return queueHold(q, on); }
/**
 * RECONNECTING → RESUMING: queue q (same qid, depth, regions) runs on the newly connected RC
 * QP qpn; the host then sends its Fabrics Connect (nvmfSubmitRaw) and calls nvmfQueueLive. 0 or a Counter.
 */
export function nvmfQueueReconnect(q: u32, qpn: u32): u32 { return queueReconnect(q, qpn); }
/** LIVE / RESUMING → RECONNECTING by the host's decision (its old QP goes to ERR); requests held. 0 or a Counter. */
export function nvmfQueueDrop(q: u32): u32 { return queueDrop(q); }
/** Give up on queue q (RECONNECTING / RESUMING → FAILED): its held and waiting requests fail (IOERR); returns how many. */
export function nvmfQueueFailHeld(q: u32): u32 { return queueFailHeld(q); }
/** Card offset of queue q's entry (nvmeof/defs.ts NQ_*: state, QPN, outage times and counts), 0 for none. */
export function nvmfQueueAddr(q: u32): u32 { return queueAddr(q); }
/** Tear queue q down: requests on it fail (IOERR), its regions are deregistered; state IDLE. */
export function nvmfQueueTeardown(q: u32): void { queueTeardown(q); }
/** Queue q's NvmfQueueState (defs.ts). */
export function nvmfQueueState(q: u32): u32 { return queueState(q); }
/** Key of the MR over guest g's whole RAM window (VA = card offset): keyed SGLs of g's data name it. */
export function nvmfSetGuestKey(g: u32, key: u32): void { setGuestKey(g, key); }
/** Remote disk d (DiskKind.NVMEOF) is namespace nsid behind fabric queue q. */
export function nvmfSetDisk(d: u32, q: u32, nsid: u32): void { setDiskQueue(d, q, nsid); }
/** The controller behind remote disk d takes at most `bytes` per command (MDTS): longer requests go out in parts. */
export function nvmfSetMaxTransfer(d: u32, bytes: u32): void { setDiskMaxTransfer(d, bytes); }
/**
 * Send the 64-byte SQE at card offset sqe, plus dataLen bytes of in-capsule data after it, on
 * queue q with a CID the firmware assigns; returns the CID or 0xFFFFFFFF (counted refusal).
 */
export function nvmfSubmitRaw(q: u32, sqe: u32, dataLen: u32): u32 { return submitRaw(q, sqe, dataLen); }
/**
 * Result of setup command cid on queue q: card offset of its 16-byte CQE once answered (the
 * slot is then free), 0 while pending, 0xFFFFFFFF for a CID not in flight there.
 */
export function nvmfRawResult(q: u32, cid: u32): u32 { return rawResult(q, cid); }
