// Exported virtio entry points: configuration-time setup called by the host's
// virtio-pci device model, and the queue-sync benchmark. Never called per request.
import { Counter } from "../counters";
import { count } from "../stats";
import { translate, INVALID } from "../dma";
import { FUNC_FEATURES_LO_OFF, FUNC_FEATURES_HI_OFF, FUNC_ENABLED_OFF, FUNC_PRIVATE_OFF, MAX_FUNCS,
  MAX_QUEUES, QUEUE_ENTRY_SIZE } from "../memmap";
import { funcAddr, funcGuest, funcQueues, queueAddr, shadowAddr } from "../pcie/func";
import { syncSplit, syncPacked, writeAvailEvent } from "./ring";
import { FP_NEEDS_RESET, FP_CONFIG_VECTOR } from "./blk";
import {
  F_RING_INDIRECT_DESC, F_RING_EVENT_IDX, F_RING_PACKED, DESC_SIZE, AVAIL_RING, USED_RING,
  USED_ELEM_SIZE, MAX_QSIZE, NO_VECTOR, QS_READY, Q_STATE, Q_SIZE, Q_DESC, Q_DRIVER, Q_DEVICE,
  Q_VECTOR, Q_MODE, Q_AVAIL_WRAP, Q_USED_WRAP, Q_USED_PUB, Q_LAST_AVAIL, QM_PACKED,
  QM_EVENT_IDX, QM_INDIRECT, SYNC_BATCH, PEVENT_WRAP_BIT, IDX_MASK,
} from "./layout";

const EVENT_FIELD: u32 = 2; // used_event / avail_event after a split ring, u16 (virtio 1.2 §2.7.6)
const PEVENT_SIZE: u32 = 4; // packed event suppression structure (§2.8.10)

export function virtioApiVersion(): u32 { return 2; }

/** FEATURES_OK: the features the driver accepted (the device model refuses any not offered). */
export function virtioSetFeatures(f: u32, lo: u32, hi: u32): void {
  if (f >= MAX_FUNCS) { count(Counter.err_bad_config); return; }
  store<u32>(funcAddr(f) + FUNC_FEATURES_LO_OFF, lo);
  store<u32>(funcAddr(f) + FUNC_FEATURES_HI_OFF, hi);
}

/** DRIVER_OK set (1) or cleared (0). */
export function virtioSetDriverOk(f: u32, on: u32): void {
  if (f >= MAX_FUNCS) return;
  store<u32>(funcAddr(f) + FUNC_ENABLED_OFF, on);
}

@inline function gpa(lo: u32, hi: u32): u64 { return (<u64>hi << 32) | <u64>lo; }

/**
 * queue_enable (virtio 1.2 §4.1.4.3): window-check the three ring areas and make the
 * queue READY. Returns 0, or the Counter of the refusal (the queue stays disabled).
 */
export function virtioQueueSetup(f: u32, q: u32, size: u32, vector: u32, descLo: u32, descHi: u32,
                                 drvLo: u32, drvHi: u32, devLo: u32, devHi: u32): u32 {
  if (f >= MAX_FUNCS || q >= funcQueues(f) || q >= MAX_QUEUES) { count(Counter.err_bad_config); return Counter.err_bad_config; }
  const lo = load<u32>(funcAddr(f) + FUNC_FEATURES_LO_OFF);
  const hi = load<u32>(funcAddr(f) + FUNC_FEATURES_HI_OFF);
  const packed = (hi & (1 << (F_RING_PACKED - 32))) != 0;
  // Split rings: a power of two (§2.7), so free-running u16 indexes map to slots.
  if (size == 0 || size > MAX_QSIZE || (!packed && (size & (size - 1)) != 0)) {
    count(Counter.err_bad_config);
    return Counter.err_bad_config;
  }
  const g = funcGuest(f);
  const drvLen = packed ? PEVENT_SIZE : AVAIL_RING + size * 2 + EVENT_FIELD;
  const devLen = packed ? PEVENT_SIZE : USED_RING + size * USED_ELEM_SIZE + EVENT_FIELD;
  const d = translate(g, gpa(descLo, descHi), <u64>size * DESC_SIZE);
  const a = translate(g, gpa(drvLo, drvHi), drvLen);
  const u = translate(g, gpa(devLo, devHi), devLen);
  if (d == INVALID || a == INVALID || u == INVALID) {
    count(Counter.err_virtio_ring_out_of_window);
    return Counter.err_virtio_ring_out_of_window;
  }
  const qa = queueAddr(f, q);
  memory.fill(qa, 0, QUEUE_ENTRY_SIZE);
  let mode: u32 = packed ? QM_PACKED : 0;
  if (lo & (1 << F_RING_EVENT_IDX)) mode |= QM_EVENT_IDX;
  if (lo & (1 << F_RING_INDIRECT_DESC)) mode |= QM_INDIRECT;
  store<u32>(qa + Q_SIZE, size);
  store<u32>(qa + Q_DESC, d);
  store<u32>(qa + Q_DRIVER, a);
  store<u32>(qa + Q_DEVICE, u);
  store<u32>(qa + Q_VECTOR, vector > NO_VECTOR ? NO_VECTOR : vector);
  store<u32>(qa + Q_MODE, mode);
  // §2.8.1: both wrap counters start at 1.
  store<u32>(qa + Q_AVAIL_WRAP, 1);
  store<u32>(qa + Q_USED_WRAP, 1);
  store<u32>(qa + Q_USED_PUB, packed ? 1 << PEVENT_WRAP_BIT : 0);
  store<u32>(qa + Q_STATE, QS_READY);
  writeAvailEvent(f, q, qa, mode); // the driver may notify before the first service
  return 0;
}

/** queue_msix_vector changed while the queue runs. */
export function virtioQueueVector(f: u32, q: u32, vector: u32): void {
  if (f >= MAX_FUNCS || q >= MAX_QUEUES) return;
  store<u32>(queueAddr(f, q) + Q_VECTOR, vector > NO_VECTOR ? NO_VECTOR : vector);
}

/** config_msix_vector (virtio 1.2 §4.1.5.1.2): the vector for configuration changes, or NO_VECTOR. */
export function virtioConfigVector(f: u32, vector: u32): void {
  if (f >= MAX_FUNCS) return;
  store<u32>(funcAddr(f) + FUNC_PRIVATE_OFF + FP_CONFIG_VECTOR, vector > NO_VECTOR ? NO_VECTOR : vector);
}

/** 1 once a queue of f broke the ring protocol (device status DEVICE_NEEDS_RESET). */
export function virtioNeedsReset(f: u32): u32 {
  return f < MAX_FUNCS ? load<u32>(funcAddr(f) + FUNC_PRIVATE_OFF + FP_NEEDS_RESET) : 0;
}

/** QueueState of queue q (layout.ts QS_*), for the device model and tests. */
export function virtioQueueState(f: u32, q: u32): u32 {
  return f < MAX_FUNCS && q < MAX_QUEUES ? load<u32>(queueAddr(f, q) + Q_STATE) : 0;
}

/**
 * Benchmark: sync up to `max` chains of queue q into its shadow ring, in batches of
 * SYNC_BATCH, without executing them. Returns how many chains were synced.
 */
export function virtioSyncBench(f: u32, q: u32, max: u32): u32 {
  if (f >= MAX_FUNCS || q >= MAX_QUEUES) return 0;
  const qa = queueAddr(f, q);
  if (load<u32>(qa + Q_STATE) != QS_READY) return 0;
  const sh = shadowAddr(f, q), g = funcGuest(f);
  const packed = (load<u32>(qa + Q_MODE) & QM_PACKED) != 0;
  let done: u32 = 0;
  while (done < max) {
    const want = min(max - done, SYNC_BATCH);
    const n = packed ? syncPacked(qa, sh, g, want) : syncSplit(qa, sh, g, want);
    if (n == 0) break;
    done += n;
  }
  return done;
}

/** Benchmark: take the split queue back to avail index `lastAvail` so the same chains sync again. */
export function virtioSyncRewind(f: u32, q: u32, lastAvail: u32): void {
  if (f >= MAX_FUNCS || q >= MAX_QUEUES) return;
  store<u32>(queueAddr(f, q) + Q_LAST_AVAIL, lastAvail & IDX_MASK);
}
