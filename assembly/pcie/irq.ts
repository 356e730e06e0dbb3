// Interrupt generation with coalescing. Front ends signal a vector after they post
// completions; the firmware decides whether an MSI-X message goes out now, later
// (coalesced: threshold count or time), or not at all (suppressed by the front end
// before it calls here). A raised vector sets its bit in IRQ_OUT; the host delivers it
// through the function's MSI-X table (host/pcie/msix.ts), which applies masking.
import { IRQ_OUT_BASE, IRQ_STATE_BASE, IRQ_ENTRY_SIZE, MAX_VECTORS, G_NOW } from "../memmap";
import { Counter } from "../counters";
import { count } from "../stats";

// Per-vector state.
const I_THRESHOLD: u32 = 0; // completions that trigger a message (0 or 1 = every signal)
const I_TIME_NS: u32 = 4; // max delay of the first pending completion (0 = none)
const I_PENDING: u32 = 8; // completions not yet announced
const I_DEADLINE: u32 = 16; // f64 virtual time when pending completions must go out

@inline function irqAddr(f: u32, v: u32): u32 { return IRQ_STATE_BASE + (f * MAX_VECTORS + v) * IRQ_ENTRY_SIZE; }

export function irqSetCoalescing(f: u32, v: u32, threshold: u32, timeNs: u32): void {
  if (v >= MAX_VECTORS) return;
  const a = irqAddr(f, v);
  store<u32>(a + I_THRESHOLD, threshold);
  store<u32>(a + I_TIME_NS, timeNs);
}

export function irqReset(f: u32): void {
  memory.fill(irqAddr(f, 0), 0, MAX_VECTORS * IRQ_ENTRY_SIZE);
  store<u32>(IRQ_OUT_BASE + (f << 2), 0);
}

@inline function fire(f: u32, v: u32, a: u32): void {
  const p = IRQ_OUT_BASE + (f << 2);
  store<u32>(p, load<u32>(p) | (1 << v));
  store<u32>(a + I_PENDING, 0);
  count(Counter.irq_raised);
}

/** `n` completions were posted for vector v of function f. */
export function irqSignal(f: u32, v: u32, n: u32): void {
  if (v >= MAX_VECTORS || n == 0) return;
  const a = irqAddr(f, v);
  const thr = load<u32>(a + I_THRESHOLD);
  if (thr <= 1) { fire(f, v, a); return; }
  const pending = load<u32>(a + I_PENDING);
  if (pending == 0) store<f64>(a + I_DEADLINE, load<f64>(G_NOW) + <f64>load<u32>(a + I_TIME_NS));
  if (pending + n >= thr) fire(f, v, a);
  else { store<u32>(a + I_PENDING, pending + n); count(Counter.irq_coalesced); }
}

/** Fire every coalesced vector of function f whose time has come (once per poll). */
export function irqTimers(f: u32, now: f64): void {
  for (let v: u32 = 0; v < MAX_VECTORS; v++) {
    const a = irqAddr(f, v);
    if (load<u32>(a + I_PENDING) != 0 && now >= load<f64>(a + I_DEADLINE)) fire(f, v, a);
  }
}

/** Earliest coalescing deadline of function f, or +inf: the host advances its clock to it when idle. */
export function irqNextDeadline(f: u32): f64 {
  let t = Infinity;
  for (let v: u32 = 0; v < MAX_VECTORS; v++) {
    const a = irqAddr(f, v);
    if (load<u32>(a + I_PENDING) != 0) t = min(t, load<f64>(a + I_DEADLINE));
  }
  return t;
}
