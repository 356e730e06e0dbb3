// Sizes and durations as fio and people write them: "4k", "64M", "1G" (powers of
// 1024, like fio's default kb_base=1024), "5ms", "2s", "250us". Both throw a
// RangeError whose message is the problem alone; callers add the field name.

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40 };
const TIME_UNITS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, min: 60e9 };

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;
const TIME_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i;

/** Bytes in a size such as 4096, "4k", "64M", "1G". */
export function parseSize(v: string | number): number {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`must be a whole number of bytes, got ${v}`);
    return v;
  }
  const m = SIZE_RE.exec(v);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new RangeError(`"${v}" is not a size (e.g. 4096, "4k", "64M", "1G")`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`"${v}" is not a whole number of bytes`);
  return bytes;
}

/** Nanoseconds in a duration such as "5ms", "2s", "250us"; a bare number is ns. */
export function parseDuration(v: string | number): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`must be a non-negative number of ns, got ${v}`);
    return Math.round(v);
  }
  const m = TIME_RE.exec(v);
  const unit = m ? TIME_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new RangeError(`"${v}" is not a duration (e.g. "5ms", "2s", "250us")`);
  return Math.round(Number(m[1]) * unit);
}
