// `wasm-dpu replay FILE.pcap [--json]`: feeds the frames of a capture into a card's RX
// ring, batch by batch (one crossing into the firmware per batch, DESIGN rule 2), runs the
// firmware's receive path (parse, type, ICRC check: assembly/rdma/rx.ts) and prints, per
// frame, what the firmware saw and did, from its receive result log (wire.ts RXL_*).
//
// The card is a storage-side NIC with nothing configured: every QP is in RESET, so packets
// are parsed, typed and ICRC-checked but no connection's sequence is applied; a capture
// of any RoCEv2 traffic (ours or a real NIC's) can be replayed.
import { parseArgs } from "node:util";
import * as M from "../../assembly/memmap.js";
import { Counter } from "../../assembly/counters.js";
import {
  Op, Pos, OpClass, RXL_FLAGS, RXL_OPCODE, RXL_POS, RXL_DQP, RXL_PSN, RXL_REASON, RXL_PAYLOAD_LEN, RXL_CLASS, RXL_SLOT,
  RXF_ICRC_OK, RXF_ACCEPTED, RXF_BTH, RXF_ICRC_CHECKED, RXF_ACKREQ, RC_LOG_PROD, RC_LOG_CONS,
} from "../../assembly/rdma/wire.js";
import { Card } from "../card.js";
import { PcapFileReader } from "../fabric/pcap-file.js";
import { PcapError, LINKTYPE_ETHERNET, linkTypeName, type PcapRecord } from "../fabric/pcap.js";
import { rxPush } from "../fabric/ring.js";
import type { CliIo } from "./run.js";

export const REPLAY_USAGE = `usage: wasm-dpu replay FILE.pcap [--json] [--batch N]

Feeds every frame of a capture (classic pcap, microsecond or nanosecond, link type
Ethernet) into a storage-side NIC's RX ring, runs the firmware's receive path on each
batch, and prints one line per frame: frame number, opcode, packet type, dest QP, PSN,
whether the ICRC is good, and what the firmware did (accepted, or dropped with the reason).

  --json      one JSON object per line and frame, nothing else on stdout
  --batch N   frames per crossing into the firmware (1..${M.NET_RING_ENTRIES}, default 256)
exit status: 0 the capture was replayed, 1 it ends inside a frame (the frames before it
are printed), 2 usage error, or a file that cannot be opened or is not an Ethernet pcap`;

const EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2;
const DEFAULT_BATCH = 256;

/** What replay reports for one frame (one JSON line). */
export interface ReplayLine {
  frame: number;
  /** BTH opcode and its name; null when the frame has no BTH (not RoCEv2, broken framing). */
  opcode: number | null;
  opcode_name: string | null;
  /** Operation class (send, write, read_request, read_response, ack, ...) and place in the message. */
  class: string | null;
  packet: "first" | "middle" | "last" | "only" | "none" | null;
  dest_qp: number | null;
  psn: number | null;
  /** The BTH AckReq bit. */
  ack_req: boolean | null;
  payload_len: number | null;
  /** true/false when the ICRC was checked; null when the framing was too broken to find it. */
  icrc_ok: boolean | null;
  action: "accepted" | "dropped";
  /** Counter name of the drop reason (err_*), when dropped. */
  reason?: string;
  /** The capture holds fewer bytes than were on the wire (snap length). */
  snapped?: true;
}

class UsageError extends Error {}

const POS_NAMES: Record<number, ReplayLine["packet"]> = { [Pos.NONE]: "none", [Pos.FIRST]: "first", [Pos.MIDDLE]: "middle", [Pos.LAST]: "last", [Pos.ONLY]: "only" };
const CLASS_NAMES: Record<number, string> = {
  [OpClass.SEND]: "send", [OpClass.WRITE]: "write", [OpClass.READ_REQUEST]: "read_request", [OpClass.READ_RESPONSE]: "read_response",
  [OpClass.ACK]: "ack", [OpClass.ATOMIC]: "atomic", [OpClass.ATOMIC_ACK]: "atomic_ack",
};

function args(argv: string[]) {
  try {
    const a = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { json: { type: "boolean" }, batch: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
    return a;
  } catch (e) {
    throw new UsageError((e as Error).message.split(/\.\s|\n/)[0]!.replace(/'/g, ""));
  }
}

/** The replay subcommand; argv excludes "replay". Returns the exit status. */
export async function replayCli(argv: string[], io: CliIo): Promise<number> {
  let file: string, json: boolean, batch: number;
  try {
    const a = args(argv);
    if (a.values.help) { io.out(REPLAY_USAGE); return EXIT_OK; }
    if (a.positionals.length === 0) throw new UsageError("replay: missing FILE.pcap");
    if (a.positionals.length > 1) throw new UsageError(`replay: unexpected argument "${a.positionals[1]}"`);
    file = a.positionals[0]!;
    json = !!a.values.json;
    batch = DEFAULT_BATCH;
    if (a.values.batch !== undefined) {
      const v = a.values.batch;
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > M.NET_RING_ENTRIES) throw new UsageError(`--batch: "${v}" is not a whole number in 1..${M.NET_RING_ENTRIES}`);
      batch = Number(v);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`wasm-dpu: ${e.message} (see wasm-dpu replay --help)`);
    return EXIT_USAGE;
  }

  let reader: PcapFileReader;
  try {
    reader = new PcapFileReader(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EACCES" ? "permission denied" : err.message;
    io.err(`wasm-dpu replay: cannot open ${file}: ${why}`);
    return EXIT_USAGE;
  }
  try {
    try {
      const h = reader.header();
      if (h.linkType !== LINKTYPE_ETHERNET) {
        io.err(`wasm-dpu replay: ${file}: link type ${linkTypeName(h.linkType)} is not Ethernet; replay reads LINKTYPE_ETHERNET (1) captures`);
        return EXIT_USAGE;
      }
    } catch (e) {
      io.err(`wasm-dpu replay: ${file}: ${e instanceof PcapError ? e.message : (e as NodeJS.ErrnoException).code === "EISDIR" ? "is a directory" : (e as Error).message}`);
      return EXIT_USAGE;
    }
    const rp = await Replayer.create();
    const print = (l: ReplayLine) => io.out(json ? JSON.stringify(l) : textLine(l));
    try {
      for (const records of reader.batches()) {
        for (let i = 0; i < records.length; i += batch) rp.feed(records.slice(i, i + batch)).forEach(print);
      }
    } catch (e) {
      if (!(e instanceof PcapError)) throw e;
      if (!json) io.out(rp.summary());
      io.err(`wasm-dpu replay: ${file}: ${e.message}`);
      return EXIT_FAILED;
    }
    if (!json) io.out(rp.summary());
    return EXIT_OK;
  } finally {
    reader.close();
  }
}

/** Frames in, one ReplayLine per frame out, through a card's RX ring and receive path. */
export class Replayer {
  private readonly dv: DataView;
  private frames = 0;
  private accepted = 0;
  private readonly drops = new Map<string, number>();

  private constructor(readonly card: Card) {
    this.dv = card.dv;
  }

  /** A storage-side NIC with nothing configured (every QP in RESET). */
  static async create(): Promise<Replayer> {
    return new Replayer(await Card.create({ guests: [], disks: [] }));
  }

  /** Replay up to NET_RING_ENTRIES records as one batch; returns a line per record, in order. */
  feed(records: readonly PcapRecord[]): ReplayLine[] {
    if (records.length > M.NET_RING_ENTRIES) throw new RangeError(`replay: a batch holds at most ${M.NET_RING_ENTRIES} frames`);
    const dv = this.dv;
    const out: (ReplayLine | undefined)[] = new Array(records.length);
    // Frames longer than an RX slot cannot reach the firmware: the host reports them.
    const fit: PcapRecord[] = [];
    const where: number[] = [];
    records.forEach((r, i) => {
      if (r.frame.length > M.NET_FRAME_MAX) out[i] = this.tooLong(r);
      else { fit.push(r); where.push(i); }
    });
    const first = dv.getUint32(M.NET_RX_CTRL, true); // RX producer: the ring index of fit[0]
    if (rxPush(this.card.memory, fit.map((r) => r.frame)) !== fit.length) throw new Error("replay: the RX ring did not take the whole batch");
    this.card.fw.rdmaRxPoll(fit.length);
    // Read the result log entries this batch produced.
    const prod = dv.getUint32(M.RDMA_CTRL + RC_LOG_PROD, true);
    let cons = dv.getUint32(M.RDMA_CTRL + RC_LOG_CONS, true);
    for (; cons !== prod; cons = (cons + 1) >>> 0) {
      const e = M.RXLOG_BASE + (cons % M.RXLOG_ENTRIES) * M.RXLOG_ENTRY_SIZE;
      const k = (dv.getUint32(e + RXL_SLOT, true) - first) >>> 0;
      if (k >= fit.length) continue; // not from this batch
      out[where[k]!] = this.line(fit[k]!, e);
    }
    dv.setUint32(M.RDMA_CTRL + RC_LOG_CONS, prod, true);
    return out.map((l, i) => {
      if (!l) throw new Error(`replay: the firmware logged nothing for frame ${records[i]!.number}`);
      this.frames++;
      if (l.action === "accepted") this.accepted++;
      else this.drops.set(l.reason!, (this.drops.get(l.reason!) ?? 0) + 1);
      return l;
    });
  }

  private line(r: PcapRecord, e: number): ReplayLine {
    const dv = this.dv;
    const flags = dv.getUint8(e + RXL_FLAGS);
    const bth = (flags & RXF_BTH) !== 0;
    const op = dv.getUint8(e + RXL_OPCODE);
    const reason = dv.getUint32(e + RXL_REASON, true);
    const l: ReplayLine = {
      frame: r.number,
      opcode: bth ? op : null,
      opcode_name: bth ? (Op[op] ?? null) : null,
      class: bth ? (CLASS_NAMES[dv.getUint8(e + RXL_CLASS)] ?? null) : null,
      packet: bth && Op[op] !== undefined ? (POS_NAMES[dv.getUint8(e + RXL_POS)] ?? null) : null,
      dest_qp: bth ? dv.getUint32(e + RXL_DQP, true) : null,
      psn: bth ? dv.getUint32(e + RXL_PSN, true) : null,
      ack_req: bth ? (flags & RXF_ACKREQ) !== 0 : null,
      payload_len: (flags & RXF_ACCEPTED) !== 0 ? dv.getUint32(e + RXL_PAYLOAD_LEN, true) : null,
      icrc_ok: (flags & RXF_ICRC_CHECKED) !== 0 ? (flags & RXF_ICRC_OK) !== 0 : null,
      action: (flags & RXF_ACCEPTED) !== 0 ? "accepted" : "dropped",
    };
    if (l.action === "dropped") l.reason = Counter[reason] ?? `reason_${reason}`;
    if (r.origLen > r.frame.length) l.snapped = true;
    return l;
  }

  private tooLong(r: PcapRecord): ReplayLine {
    return {
      frame: r.number, opcode: null, opcode_name: null, class: null, packet: null, dest_qp: null, psn: null, ack_req: null, payload_len: null,
      icrc_ok: null, action: "dropped", reason: Counter[Counter.err_rdma_oversized],
      ...(r.origLen > r.frame.length ? { snapped: true as const } : {}),
    };
  }

  /** One line: frames, accepted, dropped by reason. */
  summary(): string {
    const d = [...this.drops.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, v]) => `${k} ${v}`);
    return `replayed ${this.frames} frames: ${this.accepted} accepted, ${this.frames - this.accepted} dropped${d.length ? ` (${d.join(", ")})` : ""}`;
  }
}

const hex6 = (v: number) => `0x${v.toString(16).padStart(6, "0")}`;

function textLine(l: ReplayLine): string {
  const op = l.opcode === null ? "-".padEnd(24) : `${(l.opcode_name ?? `opcode 0x${l.opcode.toString(16)}`).padEnd(24)}`;
  const pkt = (l.packet ?? "-").padEnd(6);
  const qp = l.dest_qp === null ? "qp -       " : `qp ${hex6(l.dest_qp)}`;
  const psn = l.psn === null ? "psn -       " : `psn ${String(l.psn).padEnd(8)}`;
  const icrc = l.icrc_ok === null ? "icrc -  " : l.icrc_ok ? "icrc ok " : "icrc BAD";
  const what = l.action === "accepted" ? "accepted" : `dropped: ${l.reason}`;
  return `${String(l.frame).padStart(7)}  ${op} ${pkt} ${qp}  ${psn}  ${icrc}  ${what}${l.snapped ? " (snapped)" : ""}`;
}
