// The connector benchmark (host/bench/connector.ts) measures real work: every message its kernel
// counts was attributed to its QP, recorded in the QP's connector and put in the command ring of
// the QP's controller; the TypeScript reference does the same steps with the same result.
import { describe, it, expect } from "vitest";
import { connectorBenchCard, tsDistribute } from "../../host/bench/connector.js";
import * as M from "../../assembly/memmap.js";
import * as N from "../../assembly/nic/defs.js";

const snapshot = (c: Awaited<ReturnType<typeof connectorBenchCard>>) => {
  const dv = c.dv, out: number[][] = [];
  for (let k = 0; k < 4; k++) {
    const cb = M.NIC_CTRLS + k * M.NIC_CTRL_SIZE, p = dv.getUint32(cb + N.CB_CMD_PROD, true);
    const e = cb + N.NC_CMD + ((p - 1) % M.NIC_CMD_DEPTH) * N.CMD_SIZE; // the last entry of the batch
    out.push([p, dv.getUint32(e + N.CMD_QPN, true), dv.getUint32(e + N.CMD_RECV_SLOT, true) & 0xffff, dv.getUint32(e + N.CMD_CAPSULE, true)]);
  }
  return out;
};

describe("benchConnector kernel", () => {
  it("each message lands in the ring of its QP's controller, once; the TypeScript steps give the same rings", async () => {
    const c = await connectorBenchCard();
    expect(c.fw.benchConnector(2)).toBe(2 * 8 * 64);
    const a = snapshot(c);
    // 8 QPs (0x20..0x27) round-robin on 4 controllers: 2 QPs × 64 buffers per controller per round.
    expect(a.map((x) => x[0])).toEqual([256, 256, 256, 256]);
    expect(a.map((x) => x[1])).toEqual([0x24, 0x25, 0x26, 0x27]); // the later QP of each controller came last
    expect(a.map((x) => x[3])).toEqual(a.map((x) => M.NIC_RECV_BASE + x[2]! * M.NIC_RECV_SLOT));
    expect(c.counters().nic_commands).toBe(1024);
    expect(c.errors()).toEqual({});
    const c2 = await connectorBenchCard();
    expect(tsDistribute(c2, 2)).toBe(2 * 8 * 64);
    expect(snapshot(c2)).toEqual(a);
    // per-connector counts agree too (QPs hashed over 4 connectors)
    const stats = (x: typeof c) => [0, 1, 2, 3].map((i) => x.dv.getUint32(M.NIC_BASE + N.NG_STATS + i * 4, true));
    expect(stats(c2)).toEqual(stats(c));
    expect(stats(c).reduce((s, v) => s + v, 0)).toBe(1024);
  });
});
