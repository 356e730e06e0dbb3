// The CLI's command function in-process: progress reporting and output routing.
import { describe, expect, it } from "vitest";
import { cli, type CliIo } from "../../host/cli/run.js";
import type { Progress } from "../../host/testbed.js";

function capture(withBar: boolean) {
  const out: string[] = [], err: string[] = [], events: string[] = [], fractions: number[] = [];
  const io: CliIo = { out: (s) => out.push(s), err: (s) => err.push(s) };
  if (withBar) io.progress = { start: () => events.push("start"), update: (p: Progress) => { fractions.push(p.fraction); events.push("update"); }, stop: () => events.push("stop") };
  return { io, out, err, events, fractions };
}

describe("cli() in-process", () => {
  it("drives the progress sink from start to 100 % and stops it before printing", async () => {
    const c = capture(true);
    expect(await cli(["run", "--ios", "20000"], c.io)).toBe(0);
    expect(c.events[0]).toBe("start");
    expect(c.events.at(-1)).toBe("stop");
    expect(c.events.filter((e) => e === "update").length).toBeGreaterThan(2);
    expect(c.fractions.at(-1)).toBe(1);
    expect(c.out).toHaveLength(1);
    expect(c.err).toEqual([]);
  });

  it("--quiet leaves the progress sink alone", async () => {
    const c = capture(true);
    expect(await cli(["run", "--ios", "1000", "--quiet"], c.io)).toBe(0);
    expect(c.events).toEqual([]);
  });
});
