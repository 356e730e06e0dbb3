// The host's side of a card's Ethernet frame rings (assembly/memmap.ts NET_TX_*, NET_RX_*).
// Both rings: free-running u32 producer index at CTRL+0, consumer index at CTRL+4,
// slot = index % NET_RING_ENTRIES, a slot is { len u32, port u32, reserved u64 } + frame.
// TX: the firmware produces, the host consumes. RX: the host produces, the firmware consumes.
// The fabric moves frames in bulk (one pass per ring per round); these helpers are for
// the replay command and for tests that play a card's firmware.
import * as M from "../../assembly/memmap.js";

/** Anything with a card's memory: a Card, or a bare WebAssembly.Memory laid out by the map. */
export interface NetEndpoint {
  readonly memory: WebAssembly.Memory;
}

export const PROD_OFF = 0;
export const CONS_OFF = 4;

export function txSlot(i: number): number { return M.NET_TX_SLOTS + (i % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE; }
export function rxSlot(i: number): number { return M.NET_RX_SLOTS + (i % M.NET_RING_ENTRIES) * M.NET_SLOT_SIZE; }

/** Frames in a ring (producer − consumer, u32 arithmetic). More than NET_RING_ENTRIES means a corrupt ring. */
export function ringUsed(dv: DataView, ctrl: number): number {
  return (dv.getUint32(ctrl + PROD_OFF, true) - dv.getUint32(ctrl + CONS_OFF, true)) >>> 0;
}

/** Free RX slots; 0 also when the indexes are corrupt. */
export function rxSpace(dv: DataView): number {
  const used = ringUsed(dv, M.NET_RX_CTRL);
  return used > M.NET_RING_ENTRIES ? 0 : M.NET_RING_ENTRIES - used;
}

/**
 * Put frames into the card's RX ring as the fabric does, publishing the producer index
 * once. Returns how many went in (stops when the ring is full).
 */
export function rxPush(mem: WebAssembly.Memory, frames: readonly Uint8Array[], port = 0): number {
  const u8 = new Uint8Array(mem.buffer);
  const dv = new DataView(mem.buffer);
  let prod = dv.getUint32(M.NET_RX_CTRL + PROD_OFF, true);
  const n = Math.min(frames.length, rxSpace(dv));
  for (let i = 0; i < n; i++) {
    const f = frames[i]!;
    if (f.length > M.NET_FRAME_MAX) throw new RangeError(`rxPush: a ${f.length}-byte frame does not fit a slot (${M.NET_FRAME_MAX})`);
    const s = rxSlot(prod);
    dv.setUint32(s + M.NET_SLOT_LEN_OFF, f.length, true);
    dv.setUint32(s + M.NET_SLOT_PORT_OFF, port, true);
    dv.setBigUint64(s + 8, 0n, true);
    u8.set(f, s + M.NET_SLOT_HDR);
    prod = (prod + 1) >>> 0;
  }
  dv.setUint32(M.NET_RX_CTRL + PROD_OFF, prod, true);
  return n;
}

/** Take every frame in the RX ring, as a firmware would (tests). */
export function rxDrain(mem: WebAssembly.Memory): { port: number; frame: Uint8Array }[] {
  const u8 = new Uint8Array(mem.buffer);
  const dv = new DataView(mem.buffer);
  const prod = dv.getUint32(M.NET_RX_CTRL + PROD_OFF, true);
  let cons = dv.getUint32(M.NET_RX_CTRL + CONS_OFF, true);
  const out: { port: number; frame: Uint8Array }[] = [];
  for (; cons !== prod; cons = (cons + 1) >>> 0) {
    const s = rxSlot(cons);
    const len = dv.getUint32(s + M.NET_SLOT_LEN_OFF, true);
    out.push({ port: dv.getUint32(s + M.NET_SLOT_PORT_OFF, true), frame: u8.slice(s + M.NET_SLOT_HDR, s + M.NET_SLOT_HDR + len) });
  }
  dv.setUint32(M.NET_RX_CTRL + CONS_OFF, cons, true);
  return out;
}

/** Put a frame into the card's TX ring as its firmware would (tests). False when the ring is full. */
export function txPush(mem: WebAssembly.Memory, frame: Uint8Array, port = 0): boolean {
  const u8 = new Uint8Array(mem.buffer);
  const dv = new DataView(mem.buffer);
  if (ringUsed(dv, M.NET_TX_CTRL) >= M.NET_RING_ENTRIES) return false;
  const prod = dv.getUint32(M.NET_TX_CTRL + PROD_OFF, true);
  const s = txSlot(prod);
  dv.setUint32(s + M.NET_SLOT_LEN_OFF, frame.length, true);
  dv.setUint32(s + M.NET_SLOT_PORT_OFF, port, true);
  u8.set(frame, s + M.NET_SLOT_HDR);
  dv.setUint32(M.NET_TX_CTRL + PROD_OFF, (prod + 1) >>> 0, true);
  return true;
}

/** A memory with only the fixed part of the map: enough for the frame rings (tests, replay tools). */
export function bareNetMemory(): WebAssembly.Memory {
  const pages = Math.ceil(M.CARD_FIXED_END / M.PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages });
}
