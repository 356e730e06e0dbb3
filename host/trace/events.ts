// Events on the virtual clock: what hooks receive and what the trace records.
// Every event has the virtual time `t` (ns) it happened at and a `kind`; the rest
// depends on the kind. Kinds marked "arrives with the fabric/NIC" are reserved names:
// the types are here so tests can be written against them, the events start flowing
// when the RoCEv2 fabric, the storage-side NIC and the controllers land.

/** The event kinds a testbed emits today. */
export const LIVE_EVENT_KINDS = ["doorbell", "dma", "submit", "completion", "irq", "state", "fault", "poll"] as const;
/** Reserved: arrive with the fabric (frames, links), the storage-side NIC (WQE fetches) and the controllers. */
export const RESERVED_EVENT_KINDS = ["frame", "link", "wqe", "controller"] as const;
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

/** Reserved (arrives with the fabric): an Ethernet frame on a link. */
export interface FrameEvent extends Base { kind: "frame"; link: string; dir: "tx" | "rx"; bytes: Uint8Array; dropped?: boolean }
/** Reserved (arrives with the fabric): a link went down or up. */
export interface LinkEvent extends Base { kind: "link"; link: string; up: boolean }
/** Reserved (arrives with the storage-side NIC): a WQE fetched from a controller's send queue. */
export interface WqeEvent extends Base { kind: "wqe"; controller: string; index: number; stage: "initial" | "intermediate" | "tail" | "single" | "response" }
/** Reserved (arrives with the controllers): a storage controller's state changed. */
export interface ControllerEvent extends Base { kind: "controller"; controller: string; from: string; to: string }

export type TestbedEvent =
  | DoorbellEvent | DmaEvent | SubmitEvent | CompletionEvent | IrqEvent | StateEvent | FaultEvent | PollEvent
  | FrameEvent | LinkEvent | WqeEvent | ControllerEvent;

/** The event type of a kind. */
export type EventOf<K extends EventKind> = Extract<TestbedEvent, { kind: K }>;
