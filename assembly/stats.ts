// Counter increments for the firmware (the enum itself lives in counters.ts).
import { COUNTERS_BASE } from "./memmap";
import { Counter } from "./counters";

@inline export function count(c: Counter): void {
  const p = COUNTERS_BASE + (<u32>c << 3);
  store<u64>(p, load<u64>(p) + 1);
}

@inline export function countN(c: Counter, n: u64): void {
  const p = COUNTERS_BASE + (<u32>c << 3);
  store<u64>(p, load<u64>(p) + n);
}
