// virtqueue sync (virtio 1.2 §2.7 split, §2.8 packed): new available chains are
// copied from guest RAM into the queue's shadow ring in card memory, checked on the
// way; everything after reads only the shadow copy, so a guest cannot change a
// request after it was checked. Also the device side of the used ring and of
// notification / interrupt suppression.
//
// Defects do not stop the sync: a chain's first defect is recorded (SHC_ERR, a
// Counter) and the parser turns it into an error completion or a counted drop.
import { Counter } from "../counters";
import { countN, count } from "../stats";
import { translate, INVALID } from "../dma";
import { POLLING_BASE } from "../memmap";
import { irqSignal } from "../pcie/irq";
import {
  DESC_SIZE, DESC_SHIFT, IDX_MASK, SHD_ADDR, SHD_LEN, SHD_FLAGS, USED_ELEM_ID, USED_ELEM_LEN, PEVENT_OFF_MASK, POLL_EVENT_DISTANCE, DESC_ADDR, DESC_LEN, DESC_FLAGS, DESC_NEXT, DESCF_NEXT, DESCF_WRITE, DESCF_INDIRECT,
  AVAIL_FLAGS, AVAIL_IDX, AVAIL_RING, AVAIL_F_NO_INTERRUPT, USED_FLAGS, USED_IDX, USED_RING,
  USED_ELEM_SIZE, USED_F_NO_NOTIFY, PDESC_ADDR, PDESC_LEN, PDESC_ID, PDESC_FLAGS, PDESCF_AVAIL,
  PDESCF_USED, PEVENT_OFF_WRAP, PEVENT_FLAGS, PEVENT_ENABLE, PEVENT_DISABLE, PEVENT_DESC,
  PEVENT_WRAP_BIT, MAX_CHAIN, LONG_CHAIN_PROBE, MAX_DESC_LEN, NO_VECTOR, QS_BROKEN, Q_STATE, Q_SIZE,
  Q_DESC, Q_DRIVER, Q_DEVICE, Q_VECTOR, Q_MODE, Q_LAST_AVAIL, Q_AVAIL_WRAP, Q_USED_IDX,
  Q_USED_WRAP, Q_USED_PUB, Q_PENDING, QM_PACKED, QM_EVENT_IDX, QM_INDIRECT, SH_NCHAINS,
  SH_NDESC, SH_CHAINS, SH_CHAIN_SIZE, SHC_ID, SHC_ERR, SHC_FIRST, SHC_NDESC, SHC_RING_N,
  SHC_NO_ID, SH_BATCH_MAX, SH_DESCS, SH_DESC_SIZE, SH_DESC_CAP,
} from "./layout";

const U16: u32 = IDX_MASK;
const ERR_SHIFT: u32 = 16; // walk results: Counter << 16 | descriptors stored

@inline function fail(c: Counter, nd: u32): u32 { return (<u32>c << ERR_SHIFT) | nd; }

@inline function putDesc(dp: u32, addr: u64, len: u32, flags: u32): void {
  store<u64>(dp + SHD_ADDR, addr);
  store<u32>(dp + SHD_LEN, len);
  store<u32>(dp + SHD_FLAGS, flags & DESCF_WRITE);
}

@inline function putChain(cr: u32, id: u32, err: u32, first: u32, nd: u32, ringN: u32): void {
  store<u32>(cr + SHC_ID, id);
  store<u32>(cr + SHC_ERR, err);
  store<u16>(cr + SHC_FIRST, <u16>first);
  store<u16>(cr + SHC_NDESC, <u16>nd);
  store<u32>(cr + SHC_RING_N, ringN);
}

/** A split chain hit MAX_CHAIN at `idx`: a loop when Brent's cycle search finds one within the probe, else too long. */
function longChain(tbl: u32, tsize: u32, idx: u32): Counter {
  let tortoise = idx, power: u32 = 1, lam: u32 = 0;
  for (let i: u32 = 0; i < LONG_CHAIN_PROBE; i++) {
    const da = tbl + (idx << DESC_SHIFT);
    if ((<u32>load<u16>(da + DESC_FLAGS) & DESCF_NEXT) == 0) return Counter.err_virtio_chain_too_long;
    idx = <u32>load<u16>(da + DESC_NEXT);
    if (idx >= tsize) return Counter.err_virtio_bad_desc_index;
    if (idx == tortoise) return Counter.err_virtio_desc_loop;
    if (++lam == power) { tortoise = idx; power <<= 1; lam = 0; }
  }
  return Counter.err_virtio_chain_too_long;
}

/**
 * Walk one split chain from `head` (virtio 1.2 §2.7.5), flattening it (indirect
 * table expanded, §2.7.5.3) into shadow descriptors at dp. Returns fail(reason, n) or n.
 */
function walkSplit(desc: u32, size: u32, head: u32, g: u32, mode: u32, dp: u32): u32 {
  let tbl = desc, tsize = size, idx = head, seen: u32 = 0, nd: u32 = 0;
  let indirect = false;
  while (true) {
    const da = tbl + (idx << DESC_SHIFT);
    const fl = <u32>load<u16>(da + DESC_FLAGS);
    const len = load<u32>(da + DESC_LEN);
    if (fl & DESCF_INDIRECT) {
      // §2.7.5.3.1: no nesting, no NEXT beside INDIRECT, a whole number of descriptors.
      if ((mode & QM_INDIRECT) == 0 || indirect || (fl & DESCF_NEXT) != 0 || len == 0 ||
          (len & (DESC_SIZE - 1)) != 0 || (len >> DESC_SHIFT) > size) return fail(Counter.err_virtio_indirect_bad, nd);
      const t = translate(g, load<u64>(da + DESC_ADDR), len);
      if (t == INVALID) return fail(Counter.err_virtio_indirect_bad, nd);
      tbl = t; tsize = len >> DESC_SHIFT; idx = 0; seen = 0; indirect = true;
      continue;
    }
    if (len == 0) return fail(Counter.err_virtio_desc_zero_len, nd);
    if (len > MAX_DESC_LEN) return fail(Counter.err_virtio_desc_oversized, nd);
    if (nd == MAX_CHAIN) return fail(longChain(tbl, tsize, idx), nd);
    putDesc(dp, load<u64>(da + DESC_ADDR), len, fl);
    dp += SH_DESC_SIZE; nd++; seen++;
    if ((fl & DESCF_NEXT) == 0) return nd;
    const nx = <u32>load<u16>(da + DESC_NEXT);
    if (nx >= tsize) return fail(Counter.err_virtio_bad_desc_index, nd);
    if (seen >= tsize) return fail(Counter.err_virtio_desc_loop, nd);
    idx = nx;
  }
  return nd;
}

/**
 * Split-ring sync: copy up to `max` new avail chains of the queue at qa into the
 * shadow ring at sh. Returns how many chains (0 when none, or the ring is broken).
 */
export function syncSplit(qa: u32, sh: u32, g: u32, max: u32): u32 {
  const size = load<u32>(qa + Q_SIZE);
  const mask = size - 1;
  const avail = load<u32>(qa + Q_DRIVER);
  const last = load<u32>(qa + Q_LAST_AVAIL);
  // §2.7.13: the driver can be at most qsize ahead of what the device has taken.
  const pending = (<u32>load<u16>(avail + AVAIL_IDX) - last) & U16;
  if (pending > size) {
    store<u32>(qa + Q_STATE, QS_BROKEN);
    store<u32>(sh + SH_NCHAINS, 0);
    return 0;
  }
  const n = min(min(pending, max), SH_BATCH_MAX);
  const desc = load<u32>(qa + Q_DESC);
  const mode = load<u32>(qa + Q_MODE);
  let nd: u32 = 0, cr = sh + SH_CHAINS, i: u32 = 0;
  for (; i < n; i++) {
    if (nd + MAX_CHAIN > SH_DESC_CAP) break;
    const head = <u32>load<u16>(avail + AVAIL_RING + (((last + i) & mask) << 1));
    if (head >= size) {
      putChain(cr, SHC_NO_ID, Counter.err_virtio_bad_desc_index, nd, 0, 1);
    } else {
      const r = walkSplit(desc, size, head, g, mode, sh + SH_DESCS + nd * SH_DESC_SIZE);
      const k = r & U16;
      putChain(cr, head, r >>> ERR_SHIFT, nd, k, 1);
      nd += k;
    }
    cr += SH_CHAIN_SIZE;
  }
  store<u32>(sh + SH_NCHAINS, i);
  store<u32>(sh + SH_NDESC, nd);
  store<u32>(qa + Q_LAST_AVAIL, (last + i) & U16);
  countN(Counter.virtio_desc_synced, nd);
  return i;
}

/** Expand a packed indirect table (§2.8.7) at card offset t, n entries, into dp. */
function packedIndirect(t: u32, n: u32, dp: u32): u32 {
  if (n > MAX_CHAIN) return fail(Counter.err_virtio_chain_too_long, 0);
  for (let i: u32 = 0; i < n; i++) {
    const da = t + (i << DESC_SHIFT);
    const fl = <u32>load<u16>(da + PDESC_FLAGS);
    const len = load<u32>(da + PDESC_LEN);
    if (fl & DESCF_INDIRECT) return fail(Counter.err_virtio_indirect_bad, i);
    if (len == 0) return fail(Counter.err_virtio_desc_zero_len, i);
    if (len > MAX_DESC_LEN) return fail(Counter.err_virtio_desc_oversized, i);
    putDesc(dp + (i << DESC_SHIFT), load<u64>(da + PDESC_ADDR), len, fl);
  }
  return n;
}

/**
 * Packed-ring sync (§2.8): take up to `max` chains whose descriptors the driver made
 * available (AVAIL == driver wrap counter, USED != it). The buffer id is the last
 * descriptor's; SHC_RING_N is the ring slots the chain took (the used-position step).
 */
export function syncPacked(qa: u32, sh: u32, g: u32, max: u32): u32 {
  const size = load<u32>(qa + Q_SIZE);
  const ring = load<u32>(qa + Q_DESC);
  const mode = load<u32>(qa + Q_MODE);
  let pos = load<u32>(qa + Q_LAST_AVAIL), wrap = load<u32>(qa + Q_AVAIL_WRAP);
  const n = min(max, SH_BATCH_MAX);
  let nd: u32 = 0, cr = sh + SH_CHAINS, i: u32 = 0;
  for (; i < n; i++) {
    if (nd + MAX_CHAIN > SH_DESC_CAP) break;
    const hf = <u32>load<u16>(ring + (pos << DESC_SHIFT) + PDESC_FLAGS);
    if (((hf & PDESCF_AVAIL) != 0) != (wrap != 0) || ((hf & PDESCF_USED) != 0) == (wrap != 0)) break;
    let ringN: u32 = 0, k: u32 = 0, err: u32 = 0, id: u32 = 0;
    const dp = sh + SH_DESCS + nd * SH_DESC_SIZE;
    while (true) {
      const da = ring + (pos << DESC_SHIFT);
      const fl = <u32>load<u16>(da + PDESC_FLAGS);
      const len = load<u32>(da + PDESC_LEN);
      id = <u32>load<u16>(da + PDESC_ID);
      ringN++;
      if (++pos == size) { pos = 0; wrap ^= 1; }
      if (err == 0) {
        if (fl & DESCF_INDIRECT) {
          const t = translate(g, load<u64>(da + PDESC_ADDR), len);
          if ((mode & QM_INDIRECT) == 0 || ringN != 1 || (fl & DESCF_NEXT) != 0 || len == 0 ||
              (len & (DESC_SIZE - 1)) != 0 || (len >> DESC_SHIFT) > size || t == INVALID) err = Counter.err_virtio_indirect_bad;
          else { const r = packedIndirect(t, len >> DESC_SHIFT, dp); k = r & U16; err = r >>> ERR_SHIFT; }
        } else if (len == 0) err = Counter.err_virtio_desc_zero_len;
        else if (len > MAX_DESC_LEN) err = Counter.err_virtio_desc_oversized;
        else if (k == MAX_CHAIN) err = Counter.err_virtio_chain_too_long;
        else { putDesc(dp + (k << DESC_SHIFT), load<u64>(da + PDESC_ADDR), len, fl); k++; }
      }
      if ((fl & DESCF_NEXT) == 0) break;
      if (ringN >= size) { if (err == 0) err = Counter.err_virtio_chain_too_long; break; }
    }
    if (id >= size) putChain(cr, SHC_NO_ID, Counter.err_virtio_packed_bad_id, nd, 0, ringN);
    else { putChain(cr, id, err, nd, k, ringN); nd += k; }
    cr += SH_CHAIN_SIZE;
  }
  store<u32>(sh + SH_NCHAINS, i);
  store<u32>(sh + SH_NDESC, nd);
  store<u32>(qa + Q_LAST_AVAIL, pos);
  store<u32>(qa + Q_AVAIL_WRAP, wrap);
  countN(Counter.virtio_desc_synced, nd);
  return i;
}

// ---- used side ----

/** Write one used element (split §2.7.8) or used descriptor (packed §2.8.9). Published by queueFlush. */
@inline export function usedPush(qa: u32, id: u32, len: u32, ringN: u32): void {
  const size = load<u32>(qa + Q_SIZE);
  if (load<u32>(qa + Q_MODE) & QM_PACKED) {
    let pos = load<u32>(qa + Q_USED_IDX);
    const w = load<u32>(qa + Q_USED_WRAP);
    const da = load<u32>(qa + Q_DESC) + (pos << DESC_SHIFT);
    store<u16>(da + PDESC_ID, <u16>id);
    store<u32>(da + PDESC_LEN, len);
    // §2.8.9: AVAIL and USED both equal to the device's wrap counter; flags last.
    store<u16>(da + PDESC_FLAGS, <u16>(w != 0 ? PDESCF_AVAIL | PDESCF_USED : 0));
    pos += ringN;
    if (pos >= size) { pos -= size; store<u32>(qa + Q_USED_WRAP, w ^ 1); }
    store<u32>(qa + Q_USED_IDX, pos);
  } else {
    const ui = load<u32>(qa + Q_USED_IDX);
    const e = load<u32>(qa + Q_DEVICE) + USED_RING + (ui & (size - 1)) * USED_ELEM_SIZE;
    store<u32>(e + USED_ELEM_ID, id);
    store<u32>(e + USED_ELEM_LEN, len);
    store<u32>(qa + Q_USED_IDX, (ui + 1) & U16);
  }
  store<u32>(qa + Q_PENDING, load<u32>(qa + Q_PENDING) + 1);
  count(Counter.virtio_used);
}

/** vring_need_event (virtio 1.2 §2.7.10): did [old, new) pass `event`? All u16. */
@inline function needEvent(event: u32, nw: u32, old: u32): bool {
  return ((nw - event - 1) & U16) < ((nw - old) & U16);
}

/** Tell the driver when to notify us (§2.7.10 / §2.8.10): not at all while polling. */
export function writeAvailEvent(f: u32, q: u32, qa: u32, mode: u32): void {
  const polling = (load<u32>(POLLING_BASE + (f << 2)) >>> q) & 1;
  const dev = load<u32>(qa + Q_DEVICE);
  const last = load<u32>(qa + Q_LAST_AVAIL);
  if (mode & QM_PACKED) {
    let flags = PEVENT_ENABLE;
    if (polling) flags = PEVENT_DISABLE;
    else if (mode & QM_EVENT_IDX) {
      flags = PEVENT_DESC;
      store<u16>(dev + PEVENT_OFF_WRAP, <u16>(last | (load<u32>(qa + Q_AVAIL_WRAP) << PEVENT_WRAP_BIT)));
    }
    store<u16>(dev + PEVENT_FLAGS, <u16>flags);
  } else if (mode & QM_EVENT_IDX) {
    const ev = polling ? last + POLL_EVENT_DISTANCE : last;
    store<u16>(dev + USED_RING + load<u32>(qa + Q_SIZE) * USED_ELEM_SIZE, <u16>ev);
  } else {
    store<u16>(dev + USED_FLAGS, <u16>(polling ? USED_F_NO_NOTIFY : 0));
  }
}

/** Does the driver want an interrupt for the used entries since the last decision? */
function wantIrq(qa: u32, mode: u32): bool {
  const size = load<u32>(qa + Q_SIZE);
  const drv = load<u32>(qa + Q_DRIVER);
  const old = load<u32>(qa + Q_USED_PUB);
  if (mode & QM_PACKED) {
    const flags = <u32>load<u16>(drv + PEVENT_FLAGS);
    if (flags == PEVENT_DISABLE) return false;
    if (flags != PEVENT_DESC || (mode & QM_EVENT_IDX) == 0) return true;
    // Linearise: positions of the previous lap count as `pos - size` (u16).
    const nw = load<u32>(qa + Q_USED_IDX), w = load<u32>(qa + Q_USED_WRAP);
    const oldPos = old & PEVENT_OFF_MASK, oldWrap = old >>> PEVENT_WRAP_BIT;
    const step = oldWrap == w ? nw - oldPos : nw + size - oldPos;
    const ow = <u32>load<u16>(drv + PEVENT_OFF_WRAP);
    let ev = ow & PEVENT_OFF_MASK;
    if ((ow >>> PEVENT_WRAP_BIT) != w) ev = (ev - size) & U16;
    return needEvent(ev, nw, (nw - step) & U16);
  }
  if (mode & QM_EVENT_IDX) {
    const usedEvent = <u32>load<u16>(drv + AVAIL_RING + size * 2);
    return needEvent(usedEvent, load<u32>(qa + Q_USED_IDX), old);
  }
  return (<u32>load<u16>(drv + AVAIL_FLAGS) & AVAIL_F_NO_INTERRUPT) == 0;
}

/**
 * End of a service call: publish the used index, update avail_event, and decide the
 * interrupt once for everything completed since the last decision.
 */
export function queueFlush(f: u32, q: u32, qa: u32): void {
  const mode = load<u32>(qa + Q_MODE);
  const pending = load<u32>(qa + Q_PENDING);
  if (pending != 0 && (mode & QM_PACKED) == 0) {
    store<u16>(load<u32>(qa + Q_DEVICE) + USED_IDX, <u16>load<u32>(qa + Q_USED_IDX));
  }
  writeAvailEvent(f, q, qa, mode);
  if (pending == 0) return;
  const vector = load<u32>(qa + Q_VECTOR);
  if (wantIrq(qa, mode) && vector != NO_VECTOR) irqSignal(f, vector, pending);
  else count(Counter.irq_suppressed);
  const pub = mode & QM_PACKED
    ? load<u32>(qa + Q_USED_IDX) | (load<u32>(qa + Q_USED_WRAP) << PEVENT_WRAP_BIT)
    : load<u32>(qa + Q_USED_IDX);
  store<u32>(qa + Q_USED_PUB, pub);
  store<u32>(qa + Q_PENDING, 0);
}
