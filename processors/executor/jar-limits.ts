/**
 * The jar budget on every jar `execute` returns (core/contracts/jar-budget.ts): what is over it
 * is dropped largest first, attributed to a partner (page/jar-attribution.ts), counted in
 * `tagstream_executor_jar_dropped_total`, logged once per run at warn (counts and bytes, never a
 * value) and reported in the partner's outcome `warnings`. Statuses are left as they are.
 */
import { enforceJarBudget, type DroppedJarEntry, type JarBudget } from '../../core/contracts/jar-budget.ts';
import type { Logger } from '../../core/log.ts';
import type { ExecutorMetrics } from './metrics.ts';
import { cappedJarWarnings, droppedWarning, ownerOfDropped, withWarnings, type Writers } from './page/jar-attribution.ts';
import { policyOf } from './page/router.ts';
import type { ExecuteResult, PartnerConfig } from './schemas.ts';

export interface JarLimitContext {
  budget: JarBudget;
  eventId: string;
  pageOrigin: string;
  /** Partners that ran (consented); unattributed entries are reported to each of them. */
  active: readonly PartnerConfig[];
  writers: Readonly<Writers>;
  metrics: ExecutorMetrics;
  log: Logger;
}

interface Tally {
  entries: number;
  bytes: number;
}

const add = (m: Map<string, Tally>, k: string, bytes: number): void => {
  const t = m.get(k) ?? { entries: 0, bytes: 0 };
  t.entries++;
  t.bytes += bytes;
  m.set(k, t);
};

/** `result` with its jar within the budget and the drops reported. */
export function limitJar(result: ExecuteResult, ctx: JarLimitContext): ExecuteResult {
  const { jar, dropped } = enforceJarBudget(result.jar, ctx.budget);
  if (dropped.length === 0) return result;
  const activeIds = ctx.active.map((p) => p.id);
  const owner = { writers: ctx.writers, policy: policyOf(ctx.active), pageOrigin: ctx.pageOrigin, activeIds: new Set(activeIds) };
  const lines = new Map<string, { line: string; bytes: number }[]>();
  const byPartner = new Map<string, Tally>();
  const byLimit = new Map<string, Tally>();
  const note = (partner: string, d: DroppedJarEntry, attributed: boolean): void => {
    const list = lines.get(partner) ?? [];
    list.push({ line: droppedWarning(d, attributed), bytes: d.bytes });
    lines.set(partner, list);
  };
  for (const d of dropped) {
    const who = ownerOfDropped(d, owner);
    ctx.metrics.jarDropped.inc({ partner: who ?? '', where: d.where, kind: d.kind, limit: d.limit });
    add(byPartner, who ?? '(unattributed)', d.bytes);
    add(byLimit, d.limit, d.bytes);
    // Unattributed: every partner that ran may have written it, so each of them is told.
    if (who !== null) note(who, d, true);
    else for (const id of activeIds) note(id, d, false);
  }
  ctx.log.warn(
    {
      eventId: ctx.eventId,
      dropped: dropped.length,
      bytes: dropped.reduce((n, d) => n + d.bytes, 0),
      partners: Object.fromEntries(byPartner),
      limits: Object.fromEntries(byLimit),
    },
    'jar over its budget: entries dropped',
  );
  const warnings = new Map([...lines].map(([partner, l]) => [partner, cappedJarWarnings(l)]));
  return { ...result, jar, trackers: withWarnings(result.trackers, warnings) };
}
