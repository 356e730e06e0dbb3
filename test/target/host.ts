// End-to-end rig: a scripted NVMe-oF host on one card (RDMA-CM connect, then RC work requests
// from TypeScript: a RECV posted for each response, the 64-byte capsule SENT with a keyed SGL
// into a registered buffer or with in-capsule data) and the storage apparatus on the other card
// (StorageNic: the NIC firmware + storage controllers over a memory backend), on a Fabric.
import { expect } from "vitest";
import { pair as cmPair, connect as cmConnect, conn, CW, type Pair } from "../rdma/cm-pair.js";
import { postSend, postRecv, poll, R, VA0, type Side } from "../rdma/rc-setup.js";
import { MemoryBackend } from "../../host/backends/memory.js";
import { StorageNic, type StorageNicOptions } from "../../host/target/nic.js";
import type { LinkOptions } from "../../host/fabric/link.js";
import { parseCqe, type Cqe } from "./nvmf.js";

export const RAM = 1 << 20; // the host card's guest 0, registered as VAs from VA0
const CAPS = 0x0000, CAP_SLOT = 0x2000; // per queue: the capsule being sent
const RESPS = 0x10000, RESP_SLOT = 0x100; // per queue: the response buffer
export const DATA = 0x20000; // data buffers from here (keyed SGLs name VA0 + offset)

export interface Host {
  p: Pair; nic: StorageNic; disk: Uint8Array; key: number; mtu: number;
  /** Host side of each connected queue, in connection order (queue 0 = admin), and its CM connection id. */
  q: Side[];
  ids: number[];
  ram: Uint8Array; // the host's guest RAM (a view)
}

export interface HostOptions extends StorageNicOptions { mtu?: number; bs?: 512 | 4096; diskBytes?: number; queues?: number; link?: LinkOptions; seed?: number }

/** Run 1 µs rounds (fabric, host RDMA poll, storage NIC step) until done() or max rounds. */
export function run(h: Host, done: () => boolean, max = 50_000): number {
  let i = 0;
  for (; i < max && !done(); i++) {
    h.p.now += 1000;
    h.p.fabric.step(h.p.now);
    h.p.host.fw.rdmaPoll(1024, h.p.now);
    h.nic.step(h.p.now);
  }
  return i;
}

export async function host(o: HostOptions = {}): Promise<Host> {
  const p = await cmPair(o.link ?? {}, { seed: o.seed ?? 7 });
  const bs = o.bs ?? 512, mtu = o.mtu ?? 1024;
  const disk = new Uint8Array(o.diskBytes ?? 4 << 20);
  const nic = new StorageNic(p.target, new MemoryBackend(disk, bs), o);
  nic.listen();
  const key = p.host.fw.rdmaMrRegister(0, 0, RAM, Number(VA0 >> 32n), Number(VA0 & 0xffffffffn), R.MR_LOCAL_WRITE | R.MR_REMOTE_WRITE | R.MR_REMOTE_READ);
  expect(key).not.toBe(0);
  const g = p.host.guests[0]!;
  const h: Host = { p, nic, disk, key, mtu, q: [], ids: [], ram: p.host.u8.subarray(g.base, g.base + RAM) };
  addQueues(h, Array.from({ length: o.queues ?? 2 }, (_, qid) => qid));
  return h;
}

/** RDMA-CM connect queues with these QIDs (appended to h.q) and wait until the target bound them. */
export function addQueues(h: Host, qids: number[]): void {
  const p = h.p, g = p.host.guests[0]!;
  const ids = qids.map((qid) => cmConnect(p, qid, 32, 31, 4420, h.mtu));
  const want = h.nic.bindings().length + ids.length;
  run(h, () => ids.every((id) => p.host.fw.rdmaCmState(id) === CW.CmState.ESTABLISHED) && h.nic.bindings().length === want);
  for (const id of ids) {
    expect(CW.CmState[p.host.fw.rdmaCmState(id)]).toBe("ESTABLISHED");
    const qpn = conn(p.host, id).localQpn;
    h.q.push({ c: p.host, qpn, key: h.key, ram: g.base, blk: p.host.fw.rdmaRcBlock(qpn) });
    h.ids.push(id);
  }
}

let wrid = 1;

/** Send capsules on queue q (one in flight per queue here) and wait for each response. */
export function command(h: Host, q: number, capsule: Uint8Array, max = 50_000): Cqe {
  return commands(h, [[q, capsule]], max)[0]!;
}

/** Several queues at once: each [queue, capsule]; the responses in the same order. */
export function commands(h: Host, list: [number, Uint8Array][], max = 50_000): Cqe[] {
  const want = new Map<number, number>(); // RECV wrid → index
  const got: (Cqe | undefined)[] = list.map(() => undefined);
  for (const [i, [q, cap]] of list.entries()) {
    const s = h.q[q]!;
    h.ram.set(cap, CAPS + q * CAP_SLOT);
    const r = wrid++;
    want.set(r, i);
    expect(postRecv(s, [{ wrid: r, off: RESPS + q * RESP_SLOT, len: 64 }])).toBe(1);
    expect(postSend(s, [{ op: R.WrOp.SEND, wrid: wrid++, off: CAPS + q * CAP_SLOT, len: cap.length }])).toBe(1);
  }
  run(h, () => {
    for (const s of new Set(list.map(([q]) => h.q[q]!))) {
      for (const c of poll(s)) {
        expect(c.status).toBe(0);
        const i = want.get(c.wrid);
        if (i === undefined) continue;
        const q = list[i]![0];
        expect(c.len).toBe(16);
        got[i] = parseCqe(h.ram.slice(RESPS + q * RESP_SLOT, RESPS + q * RESP_SLOT + 16));
      }
    }
    return got.every((g) => g !== undefined);
  }, max);
  expect(got.every((g) => g !== undefined), "every response arrived").toBe(true);
  return got as Cqe[];
}

/** A keyed SGL for host data at DATA + off. */
export function sgl(h: Host, len: number, off = 0) {
  return { keyed: true as const, addr: VA0 + BigInt(DATA + off), len, key: h.key };
}
