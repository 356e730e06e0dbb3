// One loading path for the firmware, in Node and in a browser: compile the module
// once, then instantiate it per card against that card's own WebAssembly.Memory.
// asc's generated raw bindings (build/release.js) adapt the exports; we don't use the
// deprecated @assemblyscript/loader (see README).
import { instantiate } from "../build/release.js";

export type Firmware = Awaited<ReturnType<typeof instantiate>>;

const isNode = typeof process !== "undefined" && !!process.versions?.node;
/** WASM_DPU_FIRMWARE=debug (Node) loads build/debug.wasm: assertions on, names and a source map for profilers. */
export const FIRMWARE_VARIANT = isNode && process.env.WASM_DPU_FIRMWARE === "debug" ? "debug" : "release";
const DEFAULT_URL = new URL(`../build/${FIRMWARE_VARIANT}.wasm`, import.meta.url);
let cached: Promise<WebAssembly.Module> | undefined;

async function readBytes(url: URL): Promise<ArrayBuffer | Uint8Array> {
  if (url.protocol === "file:" && isNode) {
    const fs = "node:fs/promises"; // a variable, so browser bundlers leave it alone
    const { readFile } = (await import(/* @vite-ignore */ fs)) as typeof import("node:fs/promises");
    return readFile(url);
  }
  const res = await fetch(url);
  if (!res.ok) throw new Error(`firmware: fetching ${url} failed with HTTP ${res.status}`);
  return res.arrayBuffer();
}

/** The compiled firmware module (compiled once per process unless `url` is given). */
export function loadFirmware(url?: URL | string): Promise<WebAssembly.Module> {
  if (url !== undefined) return readBytes(new URL(url, DEFAULT_URL)).then((b) => WebAssembly.compile(b as BufferSource));
  cached ??= readBytes(DEFAULT_URL).then((b) => WebAssembly.compile(b as BufferSource)).catch((e) => {
    cached = undefined;
    throw new Error(`firmware: cannot load ${DEFAULT_URL} (run \`npm run build\`): ${(e as Error).message}`);
  });
  return cached;
}

/** Instantiate the firmware for one card; the memory is the card's, created by the host. */
export async function instantiateFirmware(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<Firmware> {
  return instantiate(module, {
    env: {
      memory,
      abort(msg: number, file: number, line: number, col: number) {
        throw new Error(`firmware abort at ${line}:${col}`);
      },
    },
  });
}
