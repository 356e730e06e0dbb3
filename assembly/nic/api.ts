// Exported entry points of the storage-side NIC (WQE fetch, command distribution, DIF):
// setup calls at configuration time, then one nicPoll (or rdmaPoll, which includes it) per
// round. Layouts in nic/defs.ts; what each does in nic/nic.ts.
import { nicInit as init, nicSetFlags as setFlags, nicCtrlEnable as ctrlEnable, nicBindQp as bindQp, nicDoorbell as doorbell,
  nicPoll as poll } from "./nic";

/** Clear the NIC and switch it on with NGF_* flags; registers the target QPs' receive buffers. 0 or a Counter. */
export function nicInit(flags: u32): u32 { return init(flags); }
/** NGF_* flags at run time (e.g. the tail fast path switch). */
export function nicSetFlags(flags: u32): void { setFlags(flags); }
/** Controller k's rings usable; its staging window registered. Returns the window's key, or 0. */
export function nicCtrlEnable(k: u32): u32 { return ctrlEnable(k); }
/** Target QP qpn's commands go to controller k (0xff: to none); posts its receive buffers. 0 or a Counter. */
export function nicBindQp(qpn: u32, k: u32): u32 { return bindQp(qpn, k); }
/** Controller k wrote WQEs and moved CB_SQ_TAIL. */
export function nicDoorbell(k: u32): void { doorbell(k); }
/** One NIC round at virtual time now (ns), up to budget WQEs fetched. Returns the work done (0 = idle). */
export function nicPoll(budget: u32, now: f64): u32 { return poll(budget, now); }
