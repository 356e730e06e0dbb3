// PRP data pointers (NVMe base 2.0 §4.1.1): PRP1 may carry a dword-aligned offset;
// PRP2 is the second page when the transfer ends there, else a PRP List pointer.
// Every list entry must be page aligned; the last entry of a full list page chains
// to the next list page. Each entry is read once from guest RAM and window-checked
// (assembly/dma.ts) before it becomes a request segment.
import { translate, INVALID } from "../dma";
import { reqAddr, reqAddSeg, R_NSEGS, R_SEGS, R_BYTES, SEG_SIZE } from "../blk/req";
import { Counter } from "../counters";
import { count } from "../stats";
import { NVME_PAGE, NVME_PAGE_SHIFT } from "./regs";
import { S_SUCCESS, S_PRP_OFFSET_INVALID, S_DATA_TRANSFER_ERROR, S_INVALID_FIELD } from "./spec";

const PAGE_MASK: u32 = NVME_PAGE - 1;
const PRP1_ALIGN_MASK: u32 = 3; // PRP1 offset is dword aligned (§4.1.1)
const LIST_ALIGN_MASK: u32 = 7; // a PRP List pointer is qword aligned
const PRP_ENTRY: u32 = 8;

/** Add a segment, merged with the previous one when contiguous in card memory. */
@inline function addSeg(r: u32, off: u32, len: u32): bool {
  const a = reqAddr(r);
  const n = load<u32>(a + R_NSEGS);
  if (n != 0) {
    const last = a + R_SEGS + (n - 1) * SEG_SIZE;
    if (load<u32>(last) + load<u32>(last + 4) == off) {
      store<u32>(last + 4, load<u32>(last + 4) + len);
      store<u32>(a + R_BYTES, load<u32>(a + R_BYTES) + len);
      return true;
    }
  }
  return reqAddSeg(r, off, len);
}

@inline function badOffset(): u32 { count(Counter.err_nvme_prp_offset); return S_PRP_OFFSET_INVALID; }
@inline function outOfWindow(): u32 { count(Counter.err_nvme_prp_out_of_window); return S_DATA_TRANSFER_ERROR; }

/** A page-aligned data page of `len` bytes, window-checked, added to r. */
@inline function dataPage(g: u32, r: u32, gpa: u64, len: u32): u32 {
  if ((<u32>gpa & PAGE_MASK) != 0) return badOffset();
  const c = translate(g, gpa, len);
  if (c == INVALID) return outOfWindow();
  if (!addSeg(r, c, len)) { count(Counter.err_nvme_transfer_too_large); return S_INVALID_FIELD; }
  return S_SUCCESS;
}

/**
 * Map `len` bytes (1..MDTS) described by PRP1/PRP2 into request r's segments.
 * Returns an NVMe status (S_SUCCESS or the error, already counted).
 */
@inline export function prpMap(g: u32, r: u32, prp1: u64, prp2: u64, len: u32): u32 {
  const off = <u32>prp1 & PAGE_MASK;
  if ((off & PRP1_ALIGN_MASK) != 0) return badOffset();
  const first = min(len, NVME_PAGE - off);
  const c = translate(g, prp1, first);
  if (c == INVALID) return outOfWindow();
  reqAddSeg(r, c, first);
  const left = len - first;
  if (left == 0) return S_SUCCESS;
  if (left <= NVME_PAGE) return dataPage(g, r, prp2, left); // fast path: two pages
  return prpList(g, r, prp2, left);
}

function prpList(g: u32, r: u32, list: u64, left: u32): u32 {
  if ((<u32>list & LIST_ALIGN_MASK) != 0) return badOffset();
  let pages = (left + PAGE_MASK) >> NVME_PAGE_SHIFT;
  // Each list page holds up to `slots` entries; pages strictly decrease, so chains end.
  while (true) {
    const slots = (NVME_PAGE - (<u32>list & PAGE_MASK)) / PRP_ENTRY;
    const chained = pages > slots;
    const nread = chained ? slots : pages;
    const lc = translate(g, list, <u64>(nread * PRP_ENTRY));
    if (lc == INVALID) { count(Counter.err_nvme_prp_list_bad); return S_DATA_TRANSFER_ERROR; }
    const ndata = chained ? slots - 1 : pages;
    for (let i: u32 = 0; i < ndata; i++) {
      const len = min(left, NVME_PAGE);
      const s = dataPage(g, r, load<u64>(lc + i * PRP_ENTRY), len);
      if (s != S_SUCCESS) return s;
      left -= len;
    }
    pages -= ndata;
    if (pages == 0) return S_SUCCESS;
    list = load<u64>(lc + ndata * PRP_ENTRY);
    // A chained list page starts on a page boundary.
    if ((<u32>list & PAGE_MASK) != 0) { count(Counter.err_nvme_prp_list_bad); return S_PRP_OFFSET_INVALID; }
  }
  return S_SUCCESS;
}

/** Copy `len` bytes from card offset src into r's segments (controller → host data). */
export function segsFill(r: u32, src: u32, len: u32): void {
  const a = reqAddr(r);
  const n = load<u32>(a + R_NSEGS);
  for (let i: u32 = 0; i < n && len > 0; i++) {
    const s = a + R_SEGS + i * SEG_SIZE;
    const l = min(len, load<u32>(s + 4));
    memory.copy(load<u32>(s), src, l);
    src += l;
    len -= l;
  }
}

/** Copy `len` bytes from r's segments to card offset dst (host → controller data). */
export function segsGather(r: u32, dst: u32, len: u32): void {
  const a = reqAddr(r);
  const n = load<u32>(a + R_NSEGS);
  for (let i: u32 = 0; i < n && len > 0; i++) {
    const s = a + R_SEGS + i * SEG_SIZE;
    const l = min(len, load<u32>(s + 4));
    memory.copy(dst, load<u32>(s), l);
    dst += l;
    len -= l;
  }
}
