// Two cards on a Fabric with RDMA-CM set up on both (host 10.0.0.1, target 10.0.0.2), and a run
// loop on the virtual clock: fabric step, receive poll, CM timers, on both cards.
import { Fabric, type FabricOptions } from "../../host/fabric/fabric.js";
import type { Link, LinkOptions } from "../../host/fabric/link.js";
import type { Card } from "../../host/card.js";
import * as CW from "../../assembly/rdma/cm-wire.js";
import { card, rxLog, M } from "./setup.js";
import { Counter } from "../../assembly/counters.js";

export { CW };

export const HOST = { ip: [10, 0, 0, 1], mac: [0x02, 0, 0, 0, 0, 0x01] };
export const TARGET = { ip: [10, 0, 0, 2], mac: [0x02, 0, 0, 0, 0, 0x02] };

/** An IPv4 address as its wire bytes loaded as a little-endian u32 (what the firmware takes). */
export const ipWire = (ip: number[]) => (ip[0]! | (ip[1]! << 8) | (ip[2]! << 16) | (ip[3]! << 24)) >>> 0;
export const macHi = (m: number[]) => (m[0]! << 8) | m[1]!;
export const macLo = (m: number[]) => ((m[2]! << 24) | (m[3]! << 16) | (m[4]! << 8) | m[5]!) >>> 0;

export interface Pair { host: Card; target: Card; fabric: Fabric; link: Link; now: number }

export async function pair(link: LinkOptions = {}, fabric: FabricOptions = {}): Promise<Pair> {
  const host = await card(), target = await card();
  const f = new Fabric({ seed: 7, ...fabric });
  const l = f.connect({ card: host, port: 0 }, { card: target, port: 0 }, { gbps: 100, latencyNs: 2000, ...link });
  if (host.fw.rdmaCmInit(ipWire(HOST.ip), macHi(HOST.mac), macLo(HOST.mac)) !== 0) throw new Error("host CM init");
  if (target.fw.rdmaCmInit(ipWire(TARGET.ip), macHi(TARGET.mac), macLo(TARGET.mac)) !== 0) throw new Error("target CM init");
  return { host, target, fabric: f, link: l, now: 0 };
}

/** Connect an NVMe-oF queue from host to target port (default 4420). */
export function connect(p: Pair, qid: number, hrqsize = 32, hsqsize = 31, port = 4420, mtu = 1024): number {
  return p.host.fw.rdmaCmConnect(port, qid, hrqsize, hsqsize, qid === 0 ? 0xffff : 1, mtu, ipWire(TARGET.ip), macHi(TARGET.mac), macLo(TARGET.mac));
}

/** Run the pair for `ns` of virtual time in 1 µs steps, or until `until()` holds. */
export function run(p: Pair, ns: number, until?: () => boolean): void {
  const end = p.now + ns;
  while (p.now < end) {
    p.now += 1000;
    p.fabric.step(p.now);
    for (const c of [p.host, p.target]) {
      c.fw.rdmaRxPoll(1024);
      c.fw.rdmaCmPoll(p.now);
    }
    if (until?.()) return;
  }
}

/** A connection entry's fields (cm-wire.ts CN_*). */
export function conn(c: Card, id: number) {
  const a = c.fw.rdmaCmConnAddr(id);
  const u = (o: number) => c.dv.getUint32(a + o, true);
  return {
    state: CW.CmState[u(CW.CN_STATE)], role: u(CW.CN_ROLE), localCommId: u(CW.CN_LOCAL_COMM_ID), remoteCommId: u(CW.CN_REMOTE_COMM_ID),
    localQpn: u(CW.CN_LOCAL_QPN), remoteQpn: u(CW.CN_REMOTE_QPN), localPsn: u(CW.CN_LOCAL_PSN), remotePsn: u(CW.CN_REMOTE_PSN),
    mtu: u(CW.CN_MTU), port: u(CW.CN_PORT), qid: u(CW.CN_QID), hrqsize: u(CW.CN_HRQSIZE), hsqsize: u(CW.CN_HSQSIZE),
    cntlid: u(CW.CN_CNTLID), crqsize: u(CW.CN_CRQSIZE), rejReason: u(CW.CN_REJ_REASON),
  };
}

/** Every connection entry of a card that is not IDLE, by id. */
export function conns(c: Card): Map<number, ReturnType<typeof conn>> {
  const out = new Map<number, ReturnType<typeof conn>>();
  for (let i = 0; i < M.CM_MAX_CONNS; i++) if (c.fw.rdmaCmState(i) !== CW.CmState.IDLE) out.set(i, conn(c, i));
  return out;
}

/** Drop reasons in a card's receive log since the last call. */
export const drops = (c: Card) => rxLog(c, (n) => Counter[n]!).filter((l) => !l.accepted).map((l) => l.reason);

/** The CM attribute of a frame that carries a MAD to QP1 (Ethernet, IPv4, UDP, BTH, DETH, then the MAD), else -1. */
export function madAttr(f: Uint8Array): number {
  const mad = 14 + 20 + 8 + 12 + 8;
  return f[42] === 0x64 && f.length >= mad + 256 ? (f[mad + 16]! << 8) | f[mad + 17]! : -1;
}
