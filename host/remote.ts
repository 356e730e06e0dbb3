// The remote half of a scenario whose disks have transport "rdma": the storage-side NIC on a
// card of its own, the storage controllers behind it (host/target/), the fabric link between
// the DPU and the NIC (host/fabric/), and the NVMe-oF associations the DPU's firmware brings up
// over it (host/nvmeof/initiator.ts). One NVMe-oF controller association per remote VM disk
// (admin queue + one I/O queue), each disk its own namespace of the target.
//
// Per round, after the DPU's poll (which drives the DPU's RDMA engine): fabric.step(now) moves
// frames both ways, then the NIC's round (receive path, RC engine, command distribution,
// controllers, WQE fetch). One crossing into each firmware per round (DESIGN rule 2).
import { Card } from "./card.js";
import { Fabric } from "./fabric/fabric.js";
import type { Link, DirStats } from "./fabric/link.js";
import type { ControllerStats } from "./target/controller.js";
import type { PcapWriter } from "./fabric/pcap.js";
import type { BlockBackend } from "./backends/types.js";
import { StorageNic } from "./target/nic.js";
import { DEFAULT_SUBNQN } from "./target/subsystem.js";
import { connectController, registerGuest, attachDisk, type NvmfController } from "./nvmeof/initiator.js";
import { NvmfReconnector } from "./nvmeof/reconnect.js";
import { NvmfQueueState } from "../assembly/nvmeof/defs.js";
import type { FabricSpec, TargetSpec, TargetEvent } from "./scenario.js";

/** Addresses on the storage network: the DPU is the NVMe-oF host, the NIC the target. */
export const DPU_ADDR = { ip: [10, 0, 0, 1], mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01] };
export const NIC_ADDR = { ip: [10, 0, 0, 2], mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x02] };
export const HOSTNQN = "nqn.2026-01.io.wasm-dpu:dpu";

/** Setup rounds advance the clock by this much each (the data path runs on the cost model). */
const SETUP_ROUND_NS = 1000;

const ipWire = (ip: number[]) => (ip[0]! | (ip[1]! << 8) | (ip[2]! << 16) | (ip[3]! << 24)) >>> 0;
const macHi = (m: number[]) => (m[0]! << 8) | m[1]!;
const macLo = (m: number[]) => ((m[2]! << 24) | (m[3]! << 16) | (m[4]! << 8) | m[5]!) >>> 0;

export interface RemoteDisk {
  /** The DPU card's disk index (kind "nvmeof") and the guest whose RAM its requests name. */
  disk: number;
  guest: number;
  /** The target-side storage of this namespace. */
  backend: BlockBackend;
}

export interface RemoteOptions {
  fabric: FabricSpec;
  target: TargetSpec;
  /** Target events; `at` counts from the end of the set-up (when the jobs start). */
  events?: TargetEvent[];
  seed: number;
  /** Every frame that crosses the link. */
  pcap?: PcapWriter;
  module?: WebAssembly.Module;
}

/** What a run reports of the remote half (deterministic: virtual clock and seeded faults only). */
export interface TargetReport {
  /** The DPU ↔ NIC link, one entry per direction. */
  link: { "dpu->nic": DirStats; "nic->dpu": DirStats };
  /** The storage-side NIC's firmware counters and errors by reason (assembly/counters.ts). */
  nic: { counters: Record<string, number>; errors: Record<string, number> };
  controllers: ControllerStats[];
  /** The scenario's events as they fired (ns on the run's clock). */
  events: (TargetEvent & { fired_ns: number })[];
  /** Takeovers and failbacks of the shared connectors, or reconnects of the baseline. */
  failover: ReturnType<StorageNic["failovers"]>;
  reconnect: ReturnType<NvmfReconnector["stats"]>;
}

export class RemoteStorage {
  private constructor(
    readonly dpu: Card,
    readonly nicCard: Card,
    readonly nic: StorageNic,
    readonly fabric: Fabric,
    readonly link: Link,
    readonly controllers: NvmfController[],
    private readonly events: TargetEvent[],
    /** Virtual time at which the set-up ended: event times count from here. */
    readonly t0: number,
    /** The DPU's recovery of lost connections (what the baseline, target.mode "reconnect", relies on). */
    readonly reconnector: NvmfReconnector,
  ) {}

  private nextEvent = 0;
  private readonly fired: (TargetEvent & { fired_ns: number })[] = [];

  /**
   * Build the NIC, the link and the controllers, and bring up one NVMe-oF association per
   * remote disk (RDMA-CM, Fabrics Connect, CC.EN, Identify). Setup runs on the DPU's virtual
   * clock (card.now moves on); a disk that does not come up throws with the step that failed.
   */
  static async create(dpu: Card, disks: RemoteDisk[], o: RemoteOptions): Promise<RemoteStorage> {
    const nicCard = await Card.create({ guests: [], disks: [] }, o.module);
    const nic = new StorageNic(nicCard, disks.map((d) => d.backend), {
      controllers: o.target.controllers, fastPath: o.target.fast_path, protection: o.target.protection,
      mode: o.target.mode, heartbeatNs: o.target.heartbeat,
    });
    const fabric = new Fabric({ seed: o.seed, capture: o.pcap });
    const f = o.fabric;
    const link = fabric.connect({ card: dpu, port: 0 }, { card: nicCard, port: 0 }, {
      name: "dpu-nic", gbps: f.gbps, latencyNs: f.latency, loss: f.loss, reorder: f.reorder, duplicate: f.duplicate,
    });
    for (const [c, a] of [[dpu, DPU_ADDR], [nicCard, NIC_ADDR]] as const) {
      if (c.fw.rdmaCmInit(ipWire(a.ip), macHi(a.mac), macLo(a.mac)) !== 0) throw new Error("remote storage: RDMA-CM init refused");
    }
    nic.listen();
    const step = () => {
      dpu.now += SETUP_ROUND_NS;
      dpu.poll();
      // Before the first fabric queue exists the DPU's poll() does not drive its RDMA engine.
      if (dpu.fw.nvmfQueueState(0) === NvmfQueueState.IDLE) dpu.fw.rdmaPoll(1024, dpu.now);
      fabric.step(dpu.now);
      nic.step(dpu.now);
    };
    const controllers: NvmfController[] = [];
    for (const [i, d] of disks.entries()) {
      const c = connectController({
        card: dpu, target: { ip: NIC_ADDR.ip, mac: NIC_ADDR.mac, subnqn: DEFAULT_SUBNQN }, hostnqn: HOSTNQN,
        step, firstQueue: 2 * i, ioQueues: 1, mtu: f.mtu, nsid: i + 1, scratchGuest: d.guest,
      });
      registerGuest(dpu, d.guest);
      attachDisk(dpu, d.disk, c.ioQueues[0]!, c.ns, c.maxTransfer);
      controllers.push(c);
    }
    // The host side recovers lost connections as Linux's nvme-rdma does (RDMA-CM again, Connect,
    // resubmit): the baseline needs it; with shared connectors it must never have to act.
    const reconnector = new NvmfReconnector({ card: dpu, target: { ip: NIC_ADDR.ip, mac: NIC_ADDR.mac, subnqn: DEFAULT_SUBNQN }, hostnqn: HOSTNQN, controllers });
    return new RemoteStorage(dpu, nicCard, nic, fabric, link, controllers, o.events ?? [], dpu.now, reconnector);
  }

  /** The round after the DPU's poll: due target events, frames both ways, then the NIC and its controllers. */
  step(now: number): void {
    while (this.nextEvent < this.events.length && this.t0 + this.events[this.nextEvent]!.at <= now) this.fire(this.events[this.nextEvent++]!, now);
    this.fabric.step(now);
    this.nic.step(now);
    this.reconnector.step(now);
  }

  private fire(e: TargetEvent, now: number): void {
    const k = e.controller.charCodeAt(0) - "A".charCodeAt(0);
    if (e.event === "link-down") this.nic.linkDown(k);
    else if (e.event === "link-up") this.nic.linkUp(k);
    else if (e.event === "controller-crash") this.nic.crash(k);
    else this.nic.restart(k);
    this.fired.push({ ...e, fired_ns: now - this.t0 });
  }

  /**
   * Fault hook: flip a byte of block `lba` of the i-th remote disk (its namespace, NSID i + 1) in
   * the target's backend without fixing its protection information, so a read of it fails the
   * NIC's DIF check (scenario target.protection).
   */
  corrupt(i: number, lba: number, byte = 0): void {
    if (!this.controllers[i]) throw new RangeError(`remote storage: no remote disk ${i} (have ${this.controllers.length})`);
    this.nic.corrupt(lba, byte, this.controllers[i]!.ns.nsid);
  }

  /** Tail fast path of the NIC on or off (for measuring its effect). */
  setFastPath(on: boolean): void { this.nic.setFastPath(on); }

  report(): TargetReport {
    const l = this.link.stats();
    return {
      link: { "dpu->nic": l.ab, "nic->dpu": l.ba },
      nic: { counters: this.nicCard.counters(), errors: this.nicCard.errors() },
      controllers: this.nic.stats().controllers,
      events: [...this.fired],
      failover: this.nic.failovers(),
      reconnect: this.reconnector.stats(),
    };
  }
}
