// The firmware's side of the Ethernet frame rings (memmap.ts NET_TX_*, NET_RX_*). Both rings:
// free-running u32 producer at CTRL+0, consumer at CTRL+4, slot = index % NET_RING_ENTRIES,
// slot = { len u32, port u32, reserved u64 } + frame. TX: firmware produces, host consumes;
// RX: host produces, firmware consumes. The indexes are the host's too: a producer/consumer
// distance above NET_RING_ENTRIES is a corrupt ring, treated as empty (RX) or full (TX).
import { NET_TX_CTRL, NET_TX_SLOTS, NET_RX_CTRL, NET_RX_SLOTS, NET_RING_ENTRIES, NET_SLOT_SIZE, NET_SLOT_HDR,
  NET_SLOT_LEN_OFF, NET_SLOT_PORT_OFF } from "../memmap";

export const RING_PROD: u32 = 0;
export const RING_CONS: u32 = 4;

@inline export function txSlotAddr(i: u32): u32 { return NET_TX_SLOTS + (i % NET_RING_ENTRIES) * NET_SLOT_SIZE; }
@inline export function rxSlotAddr(i: u32): u32 { return NET_RX_SLOTS + (i % NET_RING_ENTRIES) * NET_SLOT_SIZE; }

/** Free TX slots (0 when the ring is full or its indexes are corrupt). */
@inline export function txSpace(): u32 {
  const used = load<u32>(NET_TX_CTRL + RING_PROD) - load<u32>(NET_TX_CTRL + RING_CONS);
  return used >= NET_RING_ENTRIES ? 0 : NET_RING_ENTRIES - used;
}

/** Card offset where the next TX frame goes (its Ethernet header), or 0 when the ring is full. */
@inline export function txNextFrame(): u32 {
  if (txSpace() == 0) return 0;
  return txSlotAddr(load<u32>(NET_TX_CTRL + RING_PROD)) + NET_SLOT_HDR;
}

/** Publish the frame built at txNextFrame(): `len` bytes, for fabric port `port`. */
@inline export function txCommit(len: u32, port: u32): void {
  const prod = load<u32>(NET_TX_CTRL + RING_PROD);
  const s = txSlotAddr(prod);
  store<u32>(s + NET_SLOT_LEN_OFF, len);
  store<u32>(s + NET_SLOT_PORT_OFF, port);
  store<u64>(s, 0, 8);
  store<u32>(NET_TX_CTRL + RING_PROD, prod + 1);
}

/** Frames waiting in the RX ring (0 when its indexes are corrupt). */
@inline export function rxPending(): u32 {
  const used = load<u32>(NET_RX_CTRL + RING_PROD) - load<u32>(NET_RX_CTRL + RING_CONS);
  return used > NET_RING_ENTRIES ? 0 : used;
}

/** The RX indexes are further apart than the ring holds (a host bug): nothing can be taken. */
@inline export function rxCorrupt(): bool {
  return load<u32>(NET_RX_CTRL + RING_PROD) - load<u32>(NET_RX_CTRL + RING_CONS) > NET_RING_ENTRIES;
}

/** RX ring index of the oldest waiting frame (valid when rxPending() > 0). */
@inline export function rxHead(): u32 { return load<u32>(NET_RX_CTRL + RING_CONS); }

/** Release `n` frames from the RX ring. */
@inline export function rxRelease(n: u32): void { store<u32>(NET_RX_CTRL + RING_CONS, load<u32>(NET_RX_CTRL + RING_CONS) + n); }

/** Frame bytes of RX slot i. */
@inline export function rxFrameLen(i: u32): u32 { return load<u32>(rxSlotAddr(i) + NET_SLOT_LEN_OFF); }
@inline export function rxFrameAddr(i: u32): u32 { return rxSlotAddr(i) + NET_SLOT_HDR; }
