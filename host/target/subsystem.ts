// What every storage controller behind the NIC shares: the NVM subsystem (its NQN, its
// namespaces, NSID 1..n, one per backend) and the host associations (NVMe controllers by CNTLID) that the Fabrics
// Connect commands create. An admin queue may be served by one storage controller and the
// association's I/O queues by others, so this state is not per storage controller.
import type { BlockBackend } from "../backends/types.js";
import type { QpCtx } from "./controller.js";
import { PI_SIZE, PI_GUARD, PI_APPTAG, PI_REFTAG, NQN_LEN } from "../../assembly/nvmeof/defs.js";

export const DEFAULT_SUBNQN = "nqn.2026-01.io.wasm-dpu:target";
const PI_CHUNK = 1024; // blocks per PI page
export const MAX_NAMESPACES = 256;

/**
 * Protection information of a namespace (NVM command set §5.2, Type 1), kept beside the
 * backend's data: 8 bytes per block in sparse pages. A block with no stored PI (never written
 * through a controller, or deallocated) gets the PI a write of its current contents would
 * have produced the first time it is read.
 */
export class PiStore {
  private readonly pages = new Map<number, Uint8Array>(); // PI_CHUNK × 8 bytes
  private readonly valid = new Map<number, Uint8Array>(); // PI_CHUNK flags

  has(lba: number): boolean { return (this.valid.get(Math.floor(lba / PI_CHUNK))?.[lba % PI_CHUNK] ?? 0) !== 0; }

  /** Store guard / application tag / reference tag (big-endian, as on the wire) for lba. */
  set(lba: number, guard: number, appTag: number, refTag: number): void {
    const c = Math.floor(lba / PI_CHUNK);
    let page = this.pages.get(c);
    if (!page) { page = new Uint8Array(PI_CHUNK * PI_SIZE); this.pages.set(c, page); this.valid.set(c, new Uint8Array(PI_CHUNK)); }
    const o = (lba % PI_CHUNK) * PI_SIZE;
    page[o + PI_GUARD] = guard >>> 8; page[o + PI_GUARD + 1] = guard & 0xff;
    page[o + PI_APPTAG] = appTag >>> 8; page[o + PI_APPTAG + 1] = appTag & 0xff;
    page[o + PI_REFTAG] = refTag >>> 24; page[o + PI_REFTAG + 1] = (refTag >>> 16) & 0xff;
    page[o + PI_REFTAG + 2] = (refTag >>> 8) & 0xff; page[o + PI_REFTAG + 3] = refTag & 0xff;
    this.valid.get(c)![lba % PI_CHUNK] = 1;
  }

  /** lba's PI fields; the block must have PI (has()). */
  get(lba: number): { guard: number; appTag: number; refTag: number } {
    const page = this.pages.get(Math.floor(lba / PI_CHUNK))!, o = (lba % PI_CHUNK) * PI_SIZE;
    const dv = new DataView(page.buffer, page.byteOffset + o, PI_SIZE);
    return { guard: dv.getUint16(PI_GUARD), appTag: dv.getUint16(PI_APPTAG), refTag: dv.getUint32(PI_REFTAG) };
  }

  /** Copy the PI of blocks [lba, lba + n) to dst[at..]; every one must have PI (has()). One copy per PI page. */
  copyTo(lba: number, n: number, dst: Uint8Array, at: number): void {
    while (n > 0) {
      const c = Math.floor(lba / PI_CHUNK), first = lba % PI_CHUNK, k = Math.min(n, PI_CHUNK - first);
      dst.set(this.pages.get(c)!.subarray(first * PI_SIZE, (first + k) * PI_SIZE), at);
      lba += k; n -= k; at += k * PI_SIZE;
    }
  }

  /** Forget the PI of [lba, lba + n): the blocks were zeroed or deallocated. */
  drop(lba: number, n: number): void {
    for (let b = lba; b < lba + n; b++) {
      const v = this.valid.get(Math.floor(b / PI_CHUNK));
      if (v) v[b % PI_CHUNK] = 0;
    }
  }
}

export class Namespace {
  readonly blockSize: number;
  readonly blocks: number;
  readonly pi: PiStore | null;
  constructor(readonly nsid: number, readonly backend: BlockBackend, protection: boolean) {
    this.blockSize = backend.blockSize;
    this.blocks = backend.blocks;
    this.pi = protection ? new PiStore() : null;
  }
  get protection(): boolean { return this.pi !== null; }
}

/** One host association: the NVMe controller a Connect on an admin queue created. */
export interface Association {
  readonly cntlid: number;
  readonly hostnqn: string;
  readonly hostid: Uint8Array;
  cc: number;
  csts: number;
  kato: number; // keep alive timeout, ms (accepted, not enforced: no wall clock here)
  aec: number; // asynchronous event configuration (Set Features 0Bh)
  nsqa: number; // I/O submission queues granted, 0's based (Set Features 07h)
  ncqa: number;
  nqSet: boolean; // Number of Queues may be set once per association
  ioQueues: Set<number>; // I/O queue IDs connected
}

export interface SubsystemOptions {
  subnqn?: string;
  /** End-to-end protection (8-byte PI per block, Type 1) on every namespace. */
  protection?: boolean;
  /** Highest I/O queue ID an association may connect (default 31). */
  maxQid?: number;
}

export class Subsystem {
  readonly subnqn: string;
  readonly maxQid: number;
  /** Namespace NSID i + 1 is namespaces[i]. */
  readonly namespaces: readonly Namespace[];
  readonly assocs = new Map<number, Association>();
  /** Target QPs by QPN, as every controller sees them (a standby takes a QP over with its queue state). */
  readonly qps = new Map<number, QpCtx>();
  private nextCntlid = 1; // 0 and FFF0h..FFFFh are not dynamic controller IDs

  constructor(backends: BlockBackend | readonly BlockBackend[], o: SubsystemOptions = {}) {
    const list = Array.isArray(backends) ? backends : [backends as BlockBackend];
    if (list.length < 1 || list.length > MAX_NAMESPACES) throw new RangeError(`subsystem: ${list.length} namespaces, want 1..${MAX_NAMESPACES}`);
    this.namespaces = list.map((b, i) => new Namespace(i + 1, b, o.protection ?? false));
    this.subnqn = o.subnqn ?? DEFAULT_SUBNQN;
    if (new TextEncoder().encode(this.subnqn).length >= NQN_LEN) throw new RangeError(`subsystem: NQN longer than ${NQN_LEN - 1} bytes`);
    this.maxQid = o.maxQid ?? 31;
  }

  /** Namespace nsid, or undefined (NSID 0, broadcast, or beyond the last). */
  ns(nsid: number): Namespace | undefined { return this.namespaces[nsid - 1]; }

  /** The largest block size of the namespaces. */
  get maxBlockSize(): number { return Math.max(...this.namespaces.map((n) => n.blockSize)); }

  /** A new association, or null when every controller ID is taken. */
  associate(hostnqn: string, hostid: Uint8Array): Association | null {
    if (this.nextCntlid >= 0xfff0) return null;
    const a: Association = {
      cntlid: this.nextCntlid++, hostnqn, hostid, cc: 0, csts: 0, kato: 0, aec: 0,
      nsqa: this.maxQid - 1, ncqa: this.maxQid - 1, nqSet: false, ioQueues: new Set(),
    };
    this.assocs.set(a.cntlid, a);
    return a;
  }
}
