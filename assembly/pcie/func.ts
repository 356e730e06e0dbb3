// PCIe functions of the card: which front end, which guest window, which disk.
import { FUNC_TABLE_BASE, FUNC_ENTRY_SIZE, QUEUE_TABLE_BASE, MAX_QUEUES, QUEUE_ENTRY_SIZE,
  SHADOW_BASE, SHADOW_QUEUE_SIZE, DOORBELL_BASE, POLLING_BASE, SCRATCH_BASE, SCRATCH_FUNC_SIZE,
  FUNC_TYPE_OFF, FUNC_GUEST_OFF, FUNC_DISK_OFF, FUNC_NQUEUES_OFF } from "../memmap";

export enum FuncType { NONE = 0, VIRTIO_BLK = 1, NVME = 2 }

@inline export function funcAddr(f: u32): u32 { return FUNC_TABLE_BASE + f * FUNC_ENTRY_SIZE; }
@inline export function funcType(f: u32): u32 { return load<u32>(funcAddr(f) + FUNC_TYPE_OFF); }
@inline export function funcGuest(f: u32): u32 { return load<u32>(funcAddr(f) + FUNC_GUEST_OFF); }
@inline export function funcDisk(f: u32): u32 { return load<u32>(funcAddr(f) + FUNC_DISK_OFF); }
@inline export function funcQueues(f: u32): u32 { return load<u32>(funcAddr(f) + FUNC_NQUEUES_OFF); }
/** Per-queue state entry (QUEUE_ENTRY_SIZE bytes, layout owned by the front end). */
@inline export function queueAddr(f: u32, q: u32): u32 {
  return QUEUE_TABLE_BASE + (f * MAX_QUEUES + q) * QUEUE_ENTRY_SIZE;
}
/** The queue's shadow ring in card memory (SHADOW_QUEUE_SIZE bytes). */
@inline export function shadowAddr(f: u32, q: u32): u32 {
  return SHADOW_BASE + (f * MAX_QUEUES + q) * SHADOW_QUEUE_SIZE;
}
@inline export function scratchAddr(f: u32): u32 { return SCRATCH_BASE + f * SCRATCH_FUNC_SIZE; }

/** Mark queue q of function f as having work (re-armed when a budget runs out). */
@inline export function doorbellSet(f: u32, q: u32): void {
  const p = DOORBELL_BASE + (f << 2);
  store<u32>(p, load<u32>(p) | (1 << q));
}
@inline export function pollingSet(f: u32, q: u32, on: bool): void {
  const p = POLLING_BASE + (f << 2);
  const v = load<u32>(p);
  store<u32>(p, on ? v | (1 << q) : v & ~(1 << q));
}
