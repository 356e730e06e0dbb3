// Sample RoCEv2 frames for captures and interop tests (the fabric's tshark suite can import
// this): the firmware builds them (rdmaSampleFrames) through its real transmit path.
import { Card } from "../../host/card.js";
import { txDrain } from "./setup.js";

/** About 20 representative frames, Ethernet header first, no FCS. */
export async function sampleFrames(): Promise<Uint8Array[]> {
  const c = await Card.create({ guests: [{ ramBytes: 1 << 20 }], disks: [] });
  const n = c.fw.rdmaSampleFrames(c.guests[0]!.base);
  const frames = txDrain(c);
  if (frames.length !== n) throw new Error(`sampleFrames: ${n} built, ${frames.length} in the TX ring`);
  return frames;
}

/** A classic pcap (LINKTYPE_ETHERNET, nanosecond timestamps 1 µs apart) of the frames. */
export function pcapOf(frames: Uint8Array[]): Uint8Array {
  const size = 24 + frames.reduce((a, f) => a + 16 + f.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xa1b23c4d, true); // nanosecond-resolution magic
  dv.setUint16(4, 2, true); dv.setUint16(6, 4, true);
  dv.setUint32(16, 65535, true); dv.setUint32(20, 1, true); // snaplen, LINKTYPE_ETHERNET
  let at = 24;
  frames.forEach((f, i) => {
    dv.setUint32(at, 0, true); dv.setUint32(at + 4, (i + 1) * 1000, true);
    dv.setUint32(at + 8, f.length, true); dv.setUint32(at + 12, f.length, true);
    out.set(f, at + 16);
    at += 16 + f.length;
  });
  return out;
}
