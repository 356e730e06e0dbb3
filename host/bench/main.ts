// `npm run bench [-- --json] [--only NAME] [--quick]`: every figure beside its reference.
import { parseArgs } from "node:util";
import { benchCopy } from "./copy.js";
import { benchVirtioSync } from "./virtio-sync-ref.js";
import { benchEndToEnd } from "./e2e.js";
import { benchIcrc4kZlib, benchIcrc4kTs, benchIcrc64Zlib } from "./crc.js";
import { benchRx } from "./rx.js";
import { benchTx } from "./tx.js";
import { formatValue, type BenchOptions, type Figure } from "./harness.js";
import { benchFuzz } from "../fuzz/bench.js";
import { benchFabric } from "../fabric/bench.js";
import { benchCreate, benchSnapshot } from "./api.js";
import { benchRcWrite } from "./rc.js";
import { benchRdmaEndToEnd, benchRdmaLatency } from "./rdma.js";
import { benchFailoverStall } from "./failover.js";
import { benchNic } from "./nic.js";
import { benchConnector } from "./connector.js";

const BENCHES: { id: string; run: (o: BenchOptions) => Promise<Figure> }[] = [
  { id: "sync", run: benchVirtioSync },
  { id: "copy", run: benchCopy },
  { id: "e2e-virtio", run: benchEndToEnd("virtio-blk") },
  { id: "e2e-nvme", run: benchEndToEnd("nvme") },
  { id: "testbed-create", run: benchCreate },
  { id: "snapshot", run: benchSnapshot },
  { id: "icrc-4k", run: benchIcrc4kZlib },
  { id: "icrc-4k-ts", run: benchIcrc4kTs },
  { id: "icrc-64", run: benchIcrc64Zlib },
  { id: "rx", run: benchRx },
  { id: "fuzz-virtio-split", run: benchFuzz("virtio-split") },
  { id: "fuzz-virtio-packed", run: benchFuzz("virtio-packed") },
  { id: "fuzz-nvme", run: benchFuzz("nvme") },
  { id: "fuzz-roce-frame", run: benchFuzz("roce-frame") },
  { id: "fuzz-roce-rx", run: benchFuzz("roce-rx") },
  { id: "tx", run: benchTx },
  { id: "fabric-64", run: benchFabric(64) },
  { id: "fabric-4k", run: benchFabric(4096 + 58) },
  { id: "rc-write-4k", run: benchRcWrite },
  { id: "e2e-rdma", run: benchRdmaEndToEnd },
  { id: "rdma-latency", run: benchRdmaLatency },
  { id: "failover-stall", run: benchFailoverStall },
  { id: "nic-fetch", run: benchNic },
  { id: "connector", run: benchConnector },
];

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({ options: { json: { type: "boolean" }, only: { type: "string" }, quick: { type: "boolean" }, help: { type: "boolean" } } }).values;
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\nusage: npm run bench -- [--json] [--only ${BENCHES.map((b) => b.id).join("|")}] [--quick]`);
    return 2;
  }
  if (args.help) { console.log(`usage: npm run bench -- [--json] [--only ${BENCHES.map((b) => b.id).join("|")}] [--quick]`); return 0; }
  const chosen = BENCHES.filter((b) => !args.only || b.id === args.only);
  if (chosen.length === 0) { console.error(`bench: no benchmark "${args.only}" (have: ${BENCHES.map((b) => b.id).join(", ")})`); return 2; }
  const o: BenchOptions = args.quick ? { samples: 1, sampleMs: 20 } : { samples: 7, sampleMs: 250 };
  const results: Figure[] = [];
  for (const b of chosen) {
    if (!args.json) process.stderr.write(`bench: ${b.id} ...\n`);
    const f = await b.run(o);
    results.push(f);
    if (!args.json) {
      console.log(`${f.name}\n  ${formatValue(f.value, f.unit)} ${f.unit}   vs ${f.reference.name}: ${formatValue(f.reference.value, f.unit)} ${f.unit}   ratio ${f.ratio.toFixed(2)}   (median of ${f.samples})`);
    }
  }
  if (args.json) console.log(JSON.stringify({ results }, null, 2));
  return 0;
}

main().then((c) => process.exit(c), (e) => { console.error(`bench: ${(e as Error).message}`); process.exit(1); });
