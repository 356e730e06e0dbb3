// Events on the virtual clock: what hooks receive and what the trace records.
// Every event has the virtual time `t` (ns) it happened at and a `kind`; the rest
// depends on the kind.
import * as W from "../../assembly/rdma/wire.js";

/** The event kinds a testbed emits today ("frame", "link" and "controller" only when it has remote disks). */
export const LIVE_EVENT_KINDS = ["doorbell", "dma", "submit", "completion", "irq", "state", "fault", "poll", "frame", "link", "controller", "wqe"] as const;
/** Reserved names: none today (kept so code written against a reserved kind keeps compiling). */
export const RESERVED_EVENT_KINDS = [] as const;
export type LiveEventKind = (typeof LIVE_EVENT_KINDS)[number];
export type ReservedEventKind = (typeof RESERVED_EVENT_KINDS)[number];
export type EventKind = LiveEventKind | ReservedEventKind;

interface Base {
  /** Virtual time (ns). */
  t: number;
  /** Sequence number in emission order (ties on t keep their order). */
  seq: number;
}

/** A doorbell write reached the card (after any doorbell fault: `dropped`/`delayed` say what happened). */
export interface DoorbellEvent extends Base {
  kind: "doorbell"; vm: string; func: number; queue: number;
  /** A fault dropped it, or delays it to `until`. */
  dropped?: boolean; delayedUntil?: number;
}

/**
 * The firmware mapped a guest range for DMA (recorded by the firmware only while someone
 * listens: a trace ring in card memory drained once per poll). `denied` ranges were
 * outside the VM's RAM window and were not touched.
 */
export interface DmaEvent extends Base {
  kind: "dma"; vm: string; guest: number; gpa: number; len: number;
  /** "read" = guest → card, "write" = card → guest, "map" = the caller did not say. */
  dir: "map" | "read" | "write";
  denied: boolean;
}

/** An IO issued through the API (VmHandle.read/write/submit…) or by the VM's job. */
export interface SubmitEvent extends Base {
  kind: "submit"; vm: string; tag: number; op: string; lba: number; blocks: number; source: "api" | "job";
}

/** A completion the guest driver reaped; status 0 is success. */
export interface CompletionEvent extends Base {
  kind: "completion"; vm: string; tag: number; status: number; source: "api" | "job";
  /** For API IOs: operation, LBA and submit time. */
  op?: string; lba?: number; blocks?: number; submitted?: number;
}

/** MSI-X interrupts the card raised for a VM's function in one poll (bit v = vector v). */
export interface IrqEvent extends Base { kind: "irq"; vm: string; func: number; vectors: number }

/** A state machine moved: NVMe controller state, virtio device status, an NVMe SQ's state. */
export interface StateEvent extends Base {
  kind: "state"; vm: string;
  machine: "controller" | "device_status" | "sq";
  /** Queue id for machine "sq". */
  queue?: number;
  from: string; to: string;
}

/** A fault was injected (or an armed fault fired). */
export interface FaultEvent extends Base { kind: "fault"; fault: string; vm?: string; detail?: Record<string, unknown> }

/** One firmware poll: requests taken and its cost on the virtual clock. */
export interface PollEvent extends Base { kind: "poll"; taken: number; costNs: number }

/** Which way a frame goes between the DPU (the NVMe-oF host) and the storage-side NIC (the target). */
export type FrameDirection = "to-target" | "to-host";

/**
 * What a frame is, decoded from its headers (no copy of the bytes is kept): RoCEv2 frames
 * (Ethernet II / IPv4 / UDP 4791 / BTH, IBTA vol. 1 §9.2, Annex A17) carry their BTH fields;
 * any other frame only its length and direction.
 */
export interface FrameSummary {
  direction: FrameDirection;
  /** Bytes from the Ethernet header to the ICRC (no FCS). */
  length: number;
  /** BTH opcode (§9.4.1 table 38), e.g. 0x04 SEND ONLY; absent when the frame is not RoCEv2. */
  opcode?: number;
  /** The opcode's name in assembly/rdma/wire.ts `Op`: "RC_SEND_ONLY", "RC_WRITE_ONLY", "RC_ACK", "UD_SEND_ONLY", … */
  op?: string;
  /** BTH destination QP (24 bits). */
  destQp?: number;
  /** BTH packet sequence number (24 bits). */
  psn?: number;
  /** BTH AckReq bit. */
  ackReq?: boolean;
}

/**
 * A frame on a link between the DPU and the storage-side NIC: "tx" when it is put on the wire
 * (t = start of its serialization), "rx" when it arrives (t = arrival). `dropped` says why it
 * went no further: lost (seeded loss or a drop-frame fault), link_down, ring_full.
 * Emitted only while someone listens (a hook, the trace or a trigger), like the DMA trace.
 */
export interface FrameEvent extends Base, FrameSummary {
  kind: "frame"; link: string; dir: "tx" | "rx";
  dropped?: "lost" | "link_down" | "ring_full";
}
/** A link went down or up (a link-down / link-up fault, or Link.setUp). */
export interface LinkEvent extends Base { kind: "link"; link: string; up: boolean }
/**
 * The storage-side NIC fetched a WQE from a controller's send queue: which controller ("A", …),
 * its index in that queue, the packet it schedules (`stage`), the QP and the NVMe CID it serves;
 * `refused` names the reason (a counter) when the NIC did not send it.
 */
export interface WqeEvent extends Base {
  kind: "wqe"; controller: string; index: number; stage: WqeStage; qpn: number; cid: number; refused?: string;
}
/** NicWqeType (assembly/nic/defs.ts) by name. */
export const WQE_STAGES = ["initial", "intermediate", "tail", "single", "response", "read"] as const;
export type WqeStage = (typeof WQE_STAGES)[number];
/** A storage controller's state changed as the NIC sees it: up, link-down, crashed, lost, off. */
export interface ControllerEvent extends Base { kind: "controller"; controller: string; from: string; to: string }

export type TestbedEvent =
  | DoorbellEvent | DmaEvent | SubmitEvent | CompletionEvent | IrqEvent | StateEvent | FaultEvent | PollEvent
  | FrameEvent | LinkEvent | WqeEvent | ControllerEvent;

/** The event type of a kind. */
export type EventOf<K extends EventKind> = Extract<TestbedEvent, { kind: K }>;

// Frame offsets: Ethernet II, then IPv4 without options (the only framing the firmware sends).
const IP = W.ETH_HDR_LEN;
const UDP = IP + W.IP_HDR_LEN;
const BTH = UDP + W.UDP_HDR_LEN;

/** Decode a frame's summary (bytes: from the Ethernet header; read during the call only). */
export function frameSummary(bytes: Uint8Array, direction: FrameDirection): FrameSummary {
  const s: FrameSummary = { direction, length: bytes.length };
  if (bytes.length < BTH + W.BTH_LEN) return s;
  const u16 = (o: number) => (bytes[o]! << 8) | bytes[o + 1]!;
  const u24 = (o: number) => (bytes[o]! << 16) | (bytes[o + 1]! << 8) | bytes[o + 2]!;
  if (u16(W.ETH_TYPE_OFF) !== W.ETHERTYPE_IPV4 || bytes[IP + W.IP_VER_IHL_OFF] !== W.IP_VER_IHL) return s;
  if (bytes[IP + W.IP_PROTO_OFF] !== W.IPPROTO_UDP || u16(UDP + W.UDP_DPORT_OFF) !== W.ROCEV2_UDP_PORT) return s;
  const opcode = bytes[BTH + W.BTH_OPCODE_OFF]!;
  s.opcode = opcode;
  s.op = W.Op[opcode] ?? `0x${opcode.toString(16).padStart(2, "0")}`;
  s.destQp = u24(BTH + W.BTH_DQP_OFF + 1);
  s.psn = u24(BTH + W.BTH_PSN_OFF + 1);
  s.ackReq = (bytes[BTH + W.BTH_PSN_OFF]! & 0x80) !== 0; // BTH_ACKREQ is bit 31 of the PSN word
  return s;
}
