// Firmware event trace: when the host sets a flag in TRACE_CTRL, the firmware records
// each guest range it maps (dma.ts translate) into a ring in card memory; the host
// drains the ring once per poll (DESIGN rule 2: no JS call per access). Off, the cost
// is one load and a branch per translation.
import { TRACE_CTRL, TRACE_FLAGS_OFF, TRACE_PROD_OFF, TRACE_CONS_OFF, TRACE_F_DMA, TRACE_F_WQE, TRACE_RING,
  TRACE_ENTRIES, TRACE_ENTRY_SIZE, TRACE_E_KIND, TRACE_E_DIR, TRACE_E_GUEST, TRACE_E_GPA, TRACE_E_LEN,
  TRACE_E_CARD } from "./memmap";
import { Counter } from "./counters";
import { count } from "./stats";

/** Trace entry kinds. */
export enum TraceKind { NONE = 0, DMA_MAP = 1, DMA_DENIED = 2, WQE_FETCH = 3 }
/** Direction of a DMA mapping when the caller knows it (dma.ts translate's `dir`). */
export enum DmaDir { ANY = 0, FROM_GUEST = 1, TO_GUEST = 2 }

/** True when DMA mappings are being recorded. */
@inline export function traceDmaOn(): bool {
  return (load<u32>(TRACE_CTRL + TRACE_FLAGS_OFF) & TRACE_F_DMA) != 0;
}

/** Record one DMA mapping (kept out of line: only reached when tracing is on). */
export function traceDma(kind: u32, dir: u32, g: u32, gpa: u64, len: u64, card: u32): void {
  const prod = load<u32>(TRACE_CTRL + TRACE_PROD_OFF);
  const cons = load<u32>(TRACE_CTRL + TRACE_CONS_OFF);
  if (prod - cons >= TRACE_ENTRIES) { count(Counter.trace_lost); return; }
  const e = TRACE_RING + (prod % TRACE_ENTRIES) * TRACE_ENTRY_SIZE;
  store<u16>(e + TRACE_E_KIND, <u16>kind);
  store<u16>(e + TRACE_E_DIR, <u16>dir);
  store<u32>(e + TRACE_E_GUEST, g);
  store<u64>(e + TRACE_E_GPA, gpa);
  store<u32>(e + TRACE_E_LEN, len > 0xffffffff ? 0xffffffff : <u32>len);
  store<u32>(e + TRACE_E_CARD, card);
  store<u32>(TRACE_CTRL + TRACE_PROD_OFF, prod + 1);
}

/** True when the NIC's WQE fetches are being recorded. */
@inline export function traceWqeOn(): bool {
  return (load<u32>(TRACE_CTRL + TRACE_FLAGS_OFF) & TRACE_F_WQE) != 0;
}

/** Record one WQE fetch of controller k (entry layout in memmap.ts); `refused` is 0 or a Counter. */
export function traceWqe(k: u32, type: u32, qpn: u32, cid: u32, index: u32, refused: u32): void {
  traceDma(TraceKind.WQE_FETCH, type, k, (<u64>qpn << 16) | <u64>(cid & 0xffff), <u64>index, refused);
}
