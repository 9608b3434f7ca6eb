/**
 * Times of the operator commands (`replay --from/--to`, docs/replay.md): ISO 8601 with a date
 * (`2026-11-29T10:00:00Z`, `2026-11-29`), or relative to now (`-2h`, `-30m`, `-90s`, `-1d`, `now`).
 * A bad value is an InvalidInputError naming the flag.
 */
import { InvalidInputError } from '../../core/errors.ts';

const RELATIVE = /^-(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
// A date first: Date.parse alone accepts "5" or "March" in some engines.
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** Milliseconds since the epoch of `value`; `flag` names the option in the error. */
export function parseTime(flag: string, value: string, nowMs: number = Date.now()): number {
  const text = value.trim();
  if (text === 'now') return nowMs;
  const relative = RELATIVE.exec(text);
  if (relative !== null) return nowMs - Math.round(Number(relative[1]) * UNIT_MS[relative[2]!]!);
  if (ISO_DATE.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms) && ms >= 0) return ms;
  }
  throw new InvalidInputError(flag, `"${value}" is not a time: use ISO 8601 (2026-11-29T10:00:00Z) or a relative time (-2h, -30m, -1d, now)`);
}

export interface TimeRange {
  fromMs: number;
  toMs: number;
}

/** `--from` and `--to` together: both valid, from before to. */
export function parseTimeRange(from: string | undefined, to: string | undefined, nowMs: number = Date.now()): TimeRange {
  if (from === undefined) throw new InvalidInputError('--from', 'is required (ISO 8601 or relative, e.g. -2h)');
  if (to === undefined) throw new InvalidInputError('--to', 'is required (ISO 8601 or relative, e.g. now)');
  const fromMs = parseTime('--from', from, nowMs);
  const toMs = parseTime('--to', to, nowMs);
  if (fromMs >= toMs) {
    throw new InvalidInputError('--to', `must be after --from (${new Date(fromMs).toISOString()} … ${new Date(toMs).toISOString()} is empty)`);
  }
  return { fromMs, toMs };
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** A positive duration like `90s`, `10m`, `1h` (or plain milliseconds); `flag` names the option in the error. */
export function parseDuration(flag: string, value: string): number {
  const text = value.trim();
  const m = DURATION.exec(text);
  const ms = m !== null ? Math.round(Number(m[1]) * UNIT_MS[m[2]!]!) : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(ms) || ms <= 0) throw new InvalidInputError(flag, `"${value}" is not a duration: use 90s, 10m, 1h (or milliseconds)`);
  return ms;
}
