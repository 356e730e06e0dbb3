// Fabric benchmark: frames moved from one card's TX ring to another's RX ring per second
// (read the TX ring in one pass, schedule, deliver with one copy, publish both indexes),
// beside the one copy any such move needs: the same frames, TX slot → RX slot, one
// Uint8Array.set per frame.
import * as M from "../../assembly/memmap.js";
import { Fabric } from "./fabric.js";
import { bareNetMemory, txPush, rxSlot, txSlot } from "./ring.js";
import { compare, type BenchOptions, type Figure } from "../bench/harness.js";

const ROUND = 256; // frames per fabric step, as a poll round would produce

export function benchFabric(frameBytes: number): (o: BenchOptions) => Promise<Figure> {
  return async (o) => {
    const a = { memory: bareNetMemory() }, b = { memory: bareNetMemory() };
    const f = new Fabric({ seed: 1 });
    // A link fast enough that the wire never holds a round back: this measures the host's work.
    f.connect({ card: a, port: 0 }, { card: b, port: 0 }, { gbps: 1e6, latencyNs: 100 });
    const frame = new Uint8Array(frameBytes).map((_, i) => i);
    for (let i = 0; i < M.NET_RING_ENTRIES; i++) txPush(a.memory, frame, 0); // every slot holds a frame
    const adv = new DataView(a.memory.buffer), bdv = new DataView(b.memory.buffer);
    adv.setUint32(M.NET_TX_CTRL + 4, adv.getUint32(M.NET_TX_CTRL, true), true);
    let now = 0;
    const moveRound = () => {
      adv.setUint32(M.NET_TX_CTRL, (adv.getUint32(M.NET_TX_CTRL, true) + ROUND) >>> 0, true); // the firmware sent a round
      now += 1000;
      const n = f.step(now);
      bdv.setUint32(M.NET_RX_CTRL + 4, bdv.getUint32(M.NET_RX_CTRL, true), true); // and the other card took it
      return n;
    };
    const au8 = new Uint8Array(a.memory.buffer), bu8 = new Uint8Array(b.memory.buffer);
    let i = 0;
    const copyRound = () => {
      for (let k = 0; k < ROUND; k++, i++) {
        const s = txSlot(i) + M.NET_SLOT_HDR;
        bu8.set(au8.subarray(s, s + frameBytes), rxSlot(i) + M.NET_SLOT_HDR);
      }
      return ROUND;
    };
    return compare(
      `fabric: frames moved TX ring → RX ring (${frameBytes}-byte frames, ${ROUND} per round)`, "frames/s", moveRound,
      "Uint8Array.set once per frame, TX slot → RX slot", copyRound, o,
    );
  };
}
