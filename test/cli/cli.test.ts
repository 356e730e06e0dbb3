// The `wasm-dpu` command as users run it: a child process of the bundled dist/cli.js.
import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const root = path.resolve(__dirname, "../..");
const cliJs = path.join(root, "dist/cli.js");

beforeAll(() => {
  // `npm test` bundles first; a bare `vitest run` may find no bundle yet.
  if (!fs.existsSync(cliJs)) execFileSync(process.execPath, ["scripts/bundle.mjs"], { cwd: root, stdio: "inherit" });
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [cliJs, ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wasm-dpu-cli-"));
function scenarioFile(name: string, body: unknown): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, typeof body === "string" ? body : JSON.stringify(body));
  return p;
}

describe("wasm-dpu usage", () => {
  it("prints its version and help", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
    expect(cli("--version")).toMatchObject({ code: 0, out: `${pkg.version}\n` });
    const h = cli("--help");
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^usage: wasm-dpu run \[--scenario NAME\|FILE\]/);
  });

  it.each([
    [["run", "--frobnicate"], /^wasm-dpu: Unknown option --frobnicate \(see wasm-dpu --help\)\n$/],
    [["run", "--seed", "-1"], /^wasm-dpu: .*seed/],
    [["run", "--seed", "abc"], /^wasm-dpu: --seed: "abc" is not a whole number in 0\.\.4294967295/],
    [["run", "--ios", "10", "--runtime", "1ms"], /^wasm-dpu: --ios and --runtime exclude each other/],
    [["run", "--runtime", "fast"], /^wasm-dpu: --runtime: "fast" is not a duration/],
    [["walk"], /^wasm-dpu: unknown command "walk"/],
    [[], /^wasm-dpu: missing command/],
  ])("rejects %j with one usage line and exit 2", (args, msg) => {
    const r = cli(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.out).toBe("");
  });
});

describe("wasm-dpu run: bad scenarios", () => {
  it.each([
    ["block size", { vms: [{ name: "a", device: "nvme", disk: { backend: "memory", size: "1M" } }, { name: "b", device: "nvme", disk: { backend: "memory", size: "1M", block_size: 1024 } }] }, "wasm-dpu: scenario.vms[1].disk.block_size: must be 512 or 4096\n"],
    ["unknown field", { vms: [{ name: "a", device: "nvme", disk: { backend: "memory", size: "1M" } }], speed: "fast" }, 'wasm-dpu: scenario: unknown field "speed"\n'],
    ["split ring size", { vms: [{ name: "a", device: "virtio-blk", queue_size: 48, disk: { backend: "memory", size: "1M" } }] }, "wasm-dpu: scenario.vms[0].queue_size: 48 is not a power of two, which a split virtqueue needs (virtio 1.2 §2.7)\n"],
    ["broken JSON", "{ \"vms\": [", null],
  ])("%s: exit 2, the field path on stderr, no stack trace", (name, body, msg) => {
    const file = scenarioFile(`${name.replace(/ /g, "-")}.json`, body);
    const r = cli("run", "--scenario", file);
    expect(r.code).toBe(2);
    if (msg) expect(r.err).toBe(msg);
    else expect(r.err).toMatch(new RegExp(`^wasm-dpu: scenario ${file}: not valid JSON`));
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(r.out).toBe("");
  });

  it("a missing file names the file and the built-in scenarios", () => {
    const r = cli("run", "--scenario", path.join(tmp, "nope.json"));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/nope\.json: no such file, and not a built-in scenario \(local\)/);
  });
});
