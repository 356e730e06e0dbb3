// The fuzz targets, one per untrusted input the firmware parses today. A target for a
// new parser (RoCEv2 frames, NVMe-oF capsules, RDMA-CM MADs, iSCSI PDUs, management
// commands, ...) is one file beside these and one line here.
import type { Target } from "../target.js";
import { virtioTarget } from "./virtio.js";
import { nvmeTarget } from "./nvme.js";
import { scenarioTarget } from "./scenario.js";
import { roceRxTarget } from "./roce-rx.js";
import { roceFrameTarget } from "./roce-frame.js";
import { rdmaCmTarget } from "./rdma-cm.js";
import { nvmfCapsuleTarget } from "./nvmf-capsule.js";
import { dpuRxTarget } from "./dpu-rx.js";

export const TARGETS: Target[] = [
  virtioTarget(false),
  virtioTarget(true),
  nvmeTarget,
  scenarioTarget,
  roceRxTarget,
  roceFrameTarget,
  rdmaCmTarget,
  nvmfCapsuleTarget,
  dpuRxTarget,
];

export function findTarget(name: string): Target | undefined {
  return TARGETS.find((t) => t.name === name);
}
