// Memory regions (IBTA vol. 1 §10.6): a table in card memory (MR_TABLE_BASE) of ranges of card
// memory or of a guest RAM window, each with access rights and one key (lkey == rkey). Every
// RETH of an incoming RDMA WRITE / READ REQUEST and every local buffer of a work request is
// checked here: key, bounds without overflow, access right (§9.7.4.1.6, §10.6.3.3).
import { MR_TABLE_BASE, MAX_MRS, MR_ENTRY_SIZE, GUEST_TABLE_BASE, GUEST_ENTRY_SIZE, GUEST_BASE_OFF, GUEST_SIZE_OFF, MAX_GUESTS, CARD_MEM_BASE } from "../memmap";
import { Counter } from "../counters";
import { count } from "../stats";
import { MR_VALID, MR_ACCESS, MR_KEY, MR_CARD, MR_LEN, MR_GEN, MR_VA, MR_KEY_INDEX_MASK, MR_LOCAL_WRITE, MR_REMOTE_WRITE, MR_REMOTE_READ } from "./rcdefs";

/** What mrCheck returns when the access is refused; mrReason() then says why. */
export const MR_DENIED: u32 = 0xffffffff;
let lastReason: u32 = 0;
/** The Counter of the last refusal by mrCheck (err_rdma_bad_rkey, err_rdma_mr_bounds, err_rdma_mr_access). */
@inline export function mrReason(): u32 { return lastReason; }

@inline function mrAddr(i: u32): u32 { return MR_TABLE_BASE + i * MR_ENTRY_SIZE; }

/**
 * Register [addr, addr+len) of guest `guest`'s RAM window (or of card memory for guest -1) as
 * virtual addresses [va, va+len) with `access` (MR_* bits). Returns the key, or 0 when the
 * range is outside its window, the access bits are unknown or the table is full (counted
 * err_rdma_mr_bad).
 */
export function mrRegister(guest: i32, addr: u32, len: u32, va: u64, access: u32): u32 {
  let card: u32 = 0;
  const known = MR_LOCAL_WRITE | MR_REMOTE_WRITE | MR_REMOTE_READ;
  let ok = (access & ~known) == 0 && <u64>va + <u64>len >= <u64>va; // VA range must not wrap
  if (ok && guest < 0) {
    const end = <u64>memory.size() << 16;
    ok = addr >= CARD_MEM_BASE && <u64>addr + <u64>len <= end;
    card = addr;
  } else if (ok) {
    if (<u32>guest >= MAX_GUESTS) ok = false;
    else {
      const g = GUEST_TABLE_BASE + <u32>guest * GUEST_ENTRY_SIZE;
      const size = load<u32>(g + GUEST_SIZE_OFF);
      ok = size != 0 && <u64>addr + <u64>len <= <u64>size;
      card = load<u32>(g + GUEST_BASE_OFF) + addr;
    }
  }
  if (!ok) { count(Counter.err_rdma_mr_bad); return 0; }
  for (let i: u32 = 0; i < MAX_MRS; i++) {
    const m = mrAddr(i);
    if (load<u32>(m + MR_VALID) != 0) continue;
    const gen = (load<u32>(m + MR_GEN) + 1) & 0xffffff;
    const g1 = gen == 0 ? 1 : gen; // a key is never 0
    store<u32>(m + MR_GEN, g1);
    const key = (g1 << 8) | i;
    store<u32>(m + MR_VALID, 1);
    store<u32>(m + MR_ACCESS, access);
    store<u32>(m + MR_KEY, key);
    store<u32>(m + MR_CARD, card);
    store<u32>(m + MR_LEN, len);
    store<u64>(m + MR_VA, va);
    return key;
  }
  count(Counter.err_rdma_mr_bad);
  return 0;
}

/** Deregister the region of `key`: 0, or err_rdma_bad_rkey when no region has that key. */
export function mrDeregister(key: u32): u32 {
  const m = mrAddr(key & MR_KEY_INDEX_MASK);
  if (load<u32>(m + MR_VALID) == 0 || load<u32>(m + MR_KEY) != key) return Counter.err_rdma_bad_rkey;
  store<u32>(m + MR_VALID, 0);
  return 0;
}

/**
 * Card offset of [va, va+len) in the region of `key` when every bit of `need` is granted,
 * else MR_DENIED (reason in mrReason()). The bound check is done in 64 bits: va - base and
 * len are each within the region, with no sum that could wrap.
 */
export function mrCheck(key: u32, va: u64, len: u32, need: u32): u32 {
  const m = mrAddr(key & MR_KEY_INDEX_MASK);
  if (load<u32>(m + MR_VALID) == 0 || load<u32>(m + MR_KEY) != key) { lastReason = Counter.err_rdma_bad_rkey; return MR_DENIED; }
  const base = load<u64>(m + MR_VA);
  const size = <u64>load<u32>(m + MR_LEN);
  if (va < base || va - base > size || <u64>len > size - (va - base)) { lastReason = Counter.err_rdma_mr_bounds; return MR_DENIED; }
  if ((load<u32>(m + MR_ACCESS) & need) != need) { lastReason = Counter.err_rdma_mr_access; return MR_DENIED; }
  return load<u32>(m + MR_CARD) + <u32>(va - base);
}
