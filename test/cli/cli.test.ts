// The `wasm-dpu` command as users run it: a child process of the bundled dist/cli.js.
import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const root = path.resolve(__dirname, "../..");
const cliJs = path.join(root, "dist/cli.js");

/** Newest modification time under dir of files ending in ext. */
function newest(dir: string, ext: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(ext)) t = Math.max(t, fs.statSync(path.join(e.parentPath, e.name)).mtimeMs);
  }
  return t;
}

beforeAll(() => {
  // `npm test` bundles first; a bare `vitest run` may find no bundle, or an old one.
  const built = fs.existsSync(cliJs) ? fs.statSync(cliJs).mtimeMs : 0;
  const sources = Math.max(newest(path.join(root, "host"), ".ts"), newest(path.join(root, "assembly"), ".ts"));
  if (built < sources) execFileSync(process.execPath, ["scripts/bundle.mjs"], { cwd: root, stdio: "inherit" });
}, 60_000);

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
    expect(r.err).toMatch(/nope\.json: no such file, and not a built-in scenario \(local, rdma, failover\)/);
  });
});

describe("wasm-dpu run", () => {
  it("runs the default scenario with no errors and exit 0", () => {
    const r = cli("run", "--quiet");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^scenario local, seed 1: 500000 IOs/);
    expect(r.out).toMatch(/vm0-virtio \(virtio-blk\): errors 0, verify errors 0/);
    expect(r.out).toMatch(/vm1-nvme \(nvme\): errors 0, verify errors 0/);
    expect(r.out).toMatch(/firmware errors: none\nresult: ok\n$/);
  }, 30_000);

  it("--json prints one fio-shaped object with firmware counters and both clocks", () => {
    const r = cli("run", "--ios", "3000", "--json");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ scenario: "local", seed: 1, ok: true, stalled: false });
    expect(j.virtual.runtime_ns).toBeGreaterThan(0);
    expect(j.host.wall_ns).toBeGreaterThan(0);
    expect(j.host.jobs.map((x: { jobname: string }) => x.jobname)).toEqual(["vm0-virtio", "vm1-nvme"]);
    expect(j.jobs).toHaveLength(2);
    for (const job of j.jobs) {
      expect(job).toMatchObject({ error: 0, total_err: 0, verify_errors: 0 });
      expect(job.read.total_ios + job.write.total_ios).toBe(3000);
      for (const dir of [job.read, job.write]) {
        expect(dir.io_bytes).toBe(dir.total_ios * 4096);
        expect(dir.iops).toBeGreaterThan(0);
        expect(dir.bw).toBe(Math.floor(dir.bw_bytes / 1024));
        const c = dir.clat_ns;
        expect(c.min).toBeGreaterThan(0);
        expect(c.min).toBeLessThanOrEqual(c.percentile["50.000000"]);
        expect(c.percentile["50.000000"]).toBeLessThanOrEqual(c.percentile["99.000000"]);
        expect(c.percentile["99.000000"]).toBeLessThanOrEqual(c.max);
        expect(c.mean).toBeGreaterThanOrEqual(c.min);
      }
    }
    expect(j.firmware.counters.requests_completed).toBe(6000);
    expect(j.firmware.counters.virtio_requests).toBe(3000);
    expect(j.firmware.counters.nvme_io_commands).toBe(3000);
    expect(j.firmware.errors).toEqual({});
  });

  it("same seed gives byte-identical --no-wall output; another seed differs", () => {
    const a = cli("run", "--ios", "2000", "--seed", "7", "--json", "--no-wall");
    const b = cli("run", "--ios", "2000", "--seed", "7", "--json", "--no-wall");
    const c = cli("run", "--ios", "2000", "--seed", "8", "--json", "--no-wall");
    expect(a.code).toBe(0);
    expect(a.out).not.toContain('"host"');
    expect(b.out).toBe(a.out);
    expect(c.out).not.toBe(a.out);
    expect(JSON.parse(c.out).seed).toBe(8);
  });

  it("--runtime bounds each job by virtual time", () => {
    const r = cli("run", "--runtime", "2ms", "--json", "--no-wall");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    for (const job of j.jobs) {
      expect(job["job options"].runtime).toBe(2e6);
      expect(job.job_runtime_ns).toBeGreaterThanOrEqual(2e6);
      expect(job.job_runtime_ns).toBeLessThan(2.2e6); // stops issuing at 2 ms, drains what is in flight
    }
  });

  it("runs a scenario file with a file-backed disk and a packed virtqueue", () => {
    const img = path.join(tmp, "disk.img");
    const file = scenarioFile("file.json", {
      name: "file", job: { number_ios: 2000, verify: true, iodepth: 8 },
      vms: [{ name: "f", device: "virtio-blk", packed: true, queue_size: 64, ram: "8M", disk: { backend: "file", path: img, size: "4M", block_size: 512 } }],
    });
    const r = cli("run", "--scenario", file, "--json", "--no-wall");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.jobs[0].verify_errors).toBe(0);
    expect(j.firmware.counters.hostio_completed).toBe(2000);
    expect(fs.statSync(img).size).toBe(4 << 20);
    // Again on the now-written image: blocks this run has not written hold old data, not zeros.
    const again = cli("run", "--scenario", file, "--json", "--no-wall");
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out).jobs[0].verify_errors).toBe(0);
  });

  it("exits 1 when IOs fail, and says which", () => {
    // /dev/full: reads give zeros, every write fails with ENOSPC.
    const file = scenarioFile("full.json", {
      job: { number_ios: 500, iodepth: 4, verify: true },
      vms: [{ name: "full", device: "nvme", ram: "8M", disk: { backend: "file", path: "/dev/full", size: "1M" } }],
    });
    const r = cli("run", "--scenario", file, "--json", "--no-wall");
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(false);
    expect(j.jobs[0].total_err).toBe(j.jobs[0]["job options"].number_ios - j.jobs[0].read.total_ios);
    expect(j.jobs[0].total_err).toBeGreaterThan(0);
    expect(j.jobs[0].error).not.toBe(0);
    expect(j.jobs[0].verify_errors).toBe(0);
    expect(j.firmware.errors.err_backend_io).toBe(j.jobs[0].total_err);
  });

  it("exits 2 when a job cannot fit its disk", () => {
    const file = scenarioFile("small.json", { vms: [{ name: "s", device: "nvme", disk: { backend: "memory", size: "4k" } }] });
    const r = cli("run", "--scenario", file);
    expect(r.code).toBe(2);
    expect(r.err).toBe("wasm-dpu: scenario.vms[0].job.iodepth: 32 IOs of 4096 bytes do not fit apart in 4096 bytes of disk\n");
  });
});
