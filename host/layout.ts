// Places the dynamic regions of a card's memory map: RAM disks, then guest windows,
// after CARD_FIXED_END (assembly/memmap.ts), each page aligned.
import { CARD_FIXED_END, PAGE } from "../assembly/memmap.js";

export interface Region { base: number; size: number }
export interface Layout { disks: (Region | null)[]; guests: Region[]; bytes: number; pages: number }

const MAX_CARD_BYTES = 4 * 1024 * 1024 * 1024 - PAGE; // wasm32: 65535 pages
const up = (n: number) => Math.ceil(n / PAGE) * PAGE;

export function layoutCard(ramDiskBytes: (number | null)[], guestBytes: number[]): Layout {
  let at = up(CARD_FIXED_END);
  const disks = ramDiskBytes.map((b) => {
    if (b === null) return null;
    const r = { base: at, size: b };
    at += up(b);
    return r;
  });
  const guests = guestBytes.map((b) => {
    const r = { base: at, size: b };
    at += up(b);
    return r;
  });
  if (at > MAX_CARD_BYTES) {
    throw new RangeError(`card memory: RAM disks and guest RAM need ${at} bytes, more than the 4 GiB a card's WebAssembly memory can hold`);
  }
  return { disks, guests, bytes: at, pages: at / PAGE };
}
