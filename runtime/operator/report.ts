/** The text form of a replay's summary (`replay --format text`, the default). */
import type { ReplaySummary } from './replay.ts';

const SAMPLE_KEYS = 3;

export function formatReplayText(s: ReplaySummary): string {
  const out: string[] = [];
  const who = s.partners === null ? 'all partners' : `partners ${s.partners.join(', ')}`;
  out.push(`${s.mode === 'dry-run' ? 'replay --dry-run (nothing published, no jar changed)' : 'replay'}: ${s.from} … ${s.to}, ${who}`);
  const k = s.events.skipped;
  out.push(`events: ${s.events.replayed} ${s.mode === 'dry-run' ? 'run' : 'published'} of ${s.events.records} records read (skipped: ${k.control} control records, ${k.replays} replays, ${k.duplicates} duplicates, ${k.invalid} invalid)`);
  if (s.mode === 'replay') {
    if (s.processed === true) out.push('processor: processed every replayed event');
    else if (s.processed === false) out.push('processor: did not process every replayed event in time; they stay on the events topic and run when it catches up (counts below are partial)');
    else out.push('processor: not waited for (--no-wait): the requests it produces are not counted here');
  }
  out.push('', table(s), '');
  if (s.mode === 'dry-run') out.push(...details(s), `differences: ${s.differences}`);
  else out.push('the dispatcher sends the requests whose idempotency key it has not delivered yet; the others are skipped as duplicates');
  out.push(`failures: ${s.failures.length}`);
  for (const f of s.failures.slice(0, 20)) out.push(`  ${f.eventId} (visitor ${f.userId}): ${f.error}`);
  if (s.failures.length > 20) out.push(`  … and ${s.failures.length - 20} more (--format json lists all)`);
  return out.join('\n') + '\n';
}

function table(s: ReplaySummary): string {
  const dry = s.mode === 'dry-run';
  const header = dry ? ['PARTNER', 'REQUESTS', 'ORIGINAL', 'ADDED', 'REMOVED', 'CHANGED', 'UNCHANGED'] : ['PARTNER', 'REQUESTS'];
  const rows = Object.entries(s.perPartner)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([p, t]) => (dry ? [p, t.requests, t.original ?? 0, t.added ?? 0, t.removed ?? 0, t.changed ?? 0, t.unchanged ?? 0].map(String) : [p, String(t.requests)]));
  if (rows.length === 0) return '(no requests)';
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

interface Group {
  label: string;
  count: number;
  keys: string[];
  /** The first before → after seen (values differ per event: a visitor id, a timestamp). */
  example?: string;
}

function bump(groups: Map<string, Group>, label: string, key: string | null, example?: string): void {
  const g = groups.get(label) ?? { label, count: 0, keys: [], ...(example === undefined ? {} : { example }) };
  g.count += 1;
  if (key !== null && g.keys.length < SAMPLE_KEYS) g.keys.push(key);
  groups.set(label, g);
}

/** Per partner, the differences grouped over every event: what changed, how often, a few idempotency keys. */
function details(s: ReplaySummary): string[] {
  const perPartner = new Map<string, Map<string, Group>>();
  for (const e of s.eventsWithDifferences) {
    for (const d of e.partners) {
      const groups = perPartner.get(d.partner) ?? new Map<string, Group>();
      perPartner.set(d.partner, groups);
      for (const r of d.added) bump(groups, `added             ${r.endpoint}`, r.key);
      for (const r of d.removed) bump(groups, `removed           ${r.endpoint}`, r.key);
      for (const c of d.changed) {
        if (c.endpointChanged) bump(groups, `changed endpoint  ${c.before.endpoint} → ${c.after.endpoint}`, c.after.key ?? c.before.key);
        for (const p of c.params) bump(groups, `changed parameter ${p.name}`, c.after.key ?? c.before.key, `${show(p.before)} → ${show(p.after)}`);
      }
    }
  }
  const out: string[] = [];
  for (const [partner, groups] of [...perPartner].sort(([a], [b]) => a.localeCompare(b))) {
    if (groups.size === 0) continue;
    out.push(`${partner}:`);
    for (const g of groups.values()) {
      out.push(`  ${g.label}${g.example === undefined ? '' : `: ${g.example}`}  (${g.count}×${g.keys.length > 0 ? `; ids ${g.keys.join(', ')}` : ''})`);
    }
    out.push('');
  }
  return out;
}

function show(v: string | null): string {
  if (v === null) return '(absent)';
  const text = v.length > 80 ? `${v.slice(0, 80)}…` : v;
  return JSON.stringify(text);
}
