// DMA windows: every guest physical address is checked against its guest's RAM
// window before the firmware touches it (DESIGN rule 4). A guest address is
// translated to a card-memory offset; INVALID means "outside the window".
import { GUEST_TABLE_BASE, GUEST_ENTRY_SIZE, GUEST_BASE_OFF, GUEST_SIZE_OFF } from "./memmap";
import { traceDmaOn, traceDma, TraceKind, DmaDir } from "./trace";

export const INVALID: u32 = 0xffffffff;

@inline export function guestBase(g: u32): u32 {
  return load<u32>(GUEST_TABLE_BASE + g * GUEST_ENTRY_SIZE + GUEST_BASE_OFF);
}

@inline export function guestSize(g: u32): u32 {
  return load<u32>(GUEST_TABLE_BASE + g * GUEST_ENTRY_SIZE + GUEST_SIZE_OFF);
}

/**
 * Card offset of [gpa, gpa+len) in guest g's window, or INVALID. len may be 0.
 * `dir` (DmaDir) only labels the trace entry when DMA tracing is on (assembly/trace.ts).
 */
@inline export function translate(g: u32, gpa: u64, len: u64, dir: u32 = DmaDir.ANY): u32 {
  const size = <u64>guestSize(g);
  // Written so that no sum can wrap: gpa <= size and len <= size - gpa.
  const out = gpa > size || len > size - gpa ? INVALID : guestBase(g) + <u32>gpa;
  if (traceDmaOn()) traceDma(out == INVALID ? TraceKind.DMA_DENIED : TraceKind.DMA_MAP, dir, g, gpa, len, out);
  return out;
}

/** Copy guest → card; false (and nothing copied) when outside the window. */
@inline export function fromGuest(g: u32, dst: u32, gpa: u64, len: u32): bool {
  const src = translate(g, gpa, len, DmaDir.FROM_GUEST);
  if (src == INVALID) return false;
  memory.copy(dst, src, len);
  return true;
}

/** Copy card → guest; false (and nothing copied) when outside the window. */
@inline export function toGuest(g: u32, gpa: u64, src: u32, len: u32): bool {
  const dst = translate(g, gpa, len, DmaDir.TO_GUEST);
  if (dst == INVALID) return false;
  memory.copy(dst, src, len);
  return true;
}
