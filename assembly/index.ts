// Exported entry points of the firmware. The host calls these per batch, never per
// request (DESIGN rule 2): setup calls at configuration time, then poll(budget, now).
import { MEMMAP_MAGIC, G_MAGIC, G_NOW, G_NFUNCS, MAX_GUESTS, MAX_DISKS, MAX_FUNCS, MAX_QUEUES,
  GUEST_TABLE_BASE, GUEST_ENTRY_SIZE, GUEST_BASE_OFF, GUEST_SIZE_OFF, DISK_KIND_OFF,
  DISK_BLOCK_SHIFT_OFF, DISK_BLOCKS_OFF, DISK_BASE_OFF, FUNC_TYPE_OFF, FUNC_GUEST_OFF,
  FUNC_DISK_OFF, FUNC_NQUEUES_OFF, FUNC_ENTRY_SIZE, DOORBELL_BASE, POLLING_BASE, FW_LOW_SIZE,
  QUEUE_ENTRY_SIZE, NET_RING_ENTRIES } from "./memmap";
import { Counter } from "./counters";
import { count } from "./stats";
import { reqPoolInit } from "./blk/req";
import { diskAddr, hostioReap } from "./blk/disk";
import { funcAddr, funcType, FuncType, queueAddr } from "./pcie/func";
import { irqReset, irqTimers } from "./pcie/irq";
import { virtioServiceQueue, virtioFuncReset } from "./virtio/blk";
import { nvmeServiceQueue, nvmeFuncReset } from "./nvme/io";
import { nvmfActive, nvmfReap, nvmfFlush } from "./nvmeof/host";
import { DISK_NVMF_QUEUE_OFF, DISK_NVMF_MAXBLK_OFF } from "./nvmeof/defs";
import { rdmaPoll } from "./rdma/api";

export { irqSetCoalescing, irqNextDeadline } from "./pcie/irq";
export { reqsInUse } from "./blk/req";
export * from "./virtio/api";
export * from "./nvme/api";
export * from "./bench";
export * from "./rdma/api";
export * from "./nvmeof/api";
export * from "./nic/api";

/** 1 for the debug build (assertions on), 0 for release. */
export function firmwareDebug(): u32 { return ASC_NO_ASSERT ? 0 : 1; }

/** Checks the memory map against this build; returns 0 on success. */
export function init(): u32 {
  if (__heap_base > FW_LOW_SIZE) return 1;
  store<u32>(G_MAGIC, MEMMAP_MAGIC);
  store<u32>(G_NFUNCS, 0);
  reqPoolInit();
  return 0;
}

/** Guest g's RAM is card memory [base, base+size). */
export function setGuest(g: u32, base: u32, size: u32): void {
  if (g >= MAX_GUESTS) { count(Counter.err_bad_config); return; }
  const a = GUEST_TABLE_BASE + g * GUEST_ENTRY_SIZE;
  store<u32>(a + GUEST_BASE_OFF, base);
  store<u32>(a + GUEST_SIZE_OFF, size);
}

/** Disk d: kind (DiskKind), block size 1 << blockShift, `blocks` blocks, RAM disk bytes at `base`. */
export function setDisk(d: u32, kind: u32, blockShift: u32, blocks: u32, base: u32): void {
  if (d >= MAX_DISKS) { count(Counter.err_bad_config); return; }
  const a = diskAddr(d);
  store<u32>(a + DISK_KIND_OFF, kind);
  store<u32>(a + DISK_BLOCK_SHIFT_OFF, blockShift);
  store<u64>(a + DISK_BLOCKS_OFF, <u64>blocks);
  store<u32>(a + DISK_BASE_OFF, base);
  store<u32>(a + DISK_NVMF_QUEUE_OFF, 0xffffffff); // a remote disk has no queue until nvmfSetDisk
  store<u32>(a + DISK_NVMF_MAXBLK_OFF, 0);
}

/** Function f is a `type` (FuncType) front end for guest g on disk d with nqueues queues. */
export function setFunction(f: u32, type: u32, g: u32, d: u32, nqueues: u32): void {
  if (f >= MAX_FUNCS || g >= MAX_GUESTS || d >= MAX_DISKS || nqueues > MAX_QUEUES) {
    count(Counter.err_bad_config);
    return;
  }
  const a = funcAddr(f);
  memory.fill(a, 0, FUNC_ENTRY_SIZE);
  store<u32>(a + FUNC_TYPE_OFF, type);
  store<u32>(a + FUNC_GUEST_OFF, g);
  store<u32>(a + FUNC_DISK_OFF, d);
  store<u32>(a + FUNC_NQUEUES_OFF, nqueues);
  if (f + 1 > load<u32>(G_NFUNCS)) store<u32>(G_NFUNCS, f + 1);
  funcReset(f);
}

/** Device reset: queues, doorbells, interrupts of function f back to their power-on state. */
export function funcReset(f: u32): void {
  if (f >= MAX_FUNCS) return;
  memory.fill(queueAddr(f, 0), 0, MAX_QUEUES * QUEUE_ENTRY_SIZE);
  store<u32>(DOORBELL_BASE + (f << 2), 0);
  store<u32>(POLLING_BASE + (f << 2), 0);
  irqReset(f);
  const t = funcType(f);
  if (t == FuncType.VIRTIO_BLK) virtioFuncReset(f);
  else if (t == FuncType.NVME) nvmeFuncReset(f);
}

/**
 * Do up to `budget` requests of work at virtual time `now` (ns): reap host IO; with NVMe-oF
 * queues set up, one RDMA round (received frames, RC timers and sends, CM timers) and the
 * fabric queues' completions; then service every queue whose doorbell or polling bit is set,
 * firing due interrupts; then post the capsules this poll built and transmit them.
 * A service function that stops on the budget re-arms its doorbell bit itself.
 * Returns the number of requests taken from the queues.
 */
export function poll(budget: u32, now: f64): u32 {
  store<f64>(G_NOW, now);
  count(Counter.polls);
  hostioReap();
  const fabric = nvmfActive();
  if (fabric) {
    rdmaPoll(NET_RING_ENTRIES, now);
    nvmfReap();
  }
  const nf = load<u32>(G_NFUNCS);
  let done: u32 = 0;
  for (let f: u32 = 0; f < nf; f++) {
    const t = funcType(f);
    const dbp = DOORBELL_BASE + (f << 2);
    let bits = load<u32>(dbp) | load<u32>(POLLING_BASE + (f << 2));
    store<u32>(dbp, 0);
    while (bits != 0) {
      const q = <u32>ctz(bits);
      bits &= bits - 1;
      count(Counter.doorbells_serviced);
      const left = budget > done ? budget - done : 0;
      if (left == 0) { store<u32>(dbp, load<u32>(dbp) | (1 << q)); continue; }
      if (t == FuncType.VIRTIO_BLK) done += virtioServiceQueue(f, q, left);
      else if (t == FuncType.NVME) done += nvmeServiceQueue(f, q, left);
    }
    irqTimers(f, now);
  }
  if (fabric) {
    nvmfFlush(); // one rcPostSend per fabric queue for the capsules built above, sent this round
  }
  return done;
}
