/**
 * Which partner a captured request belongs to, and whether the dispatcher may send it at all
 * (DESIGN.md "The dispatcher"): only to hosts that partner declares in `captureHosts`. A request
 * whose `partner` is null belongs to the one partner that declares its host; when none or several
 * do, it is not sent (attribution by initiator can miss requests made from promise callbacks, and
 * guessing between two partners would leak one partner's data to the other).
 *
 * Pure: no DNS, no I/O. The address policy (private, loopback, link-local) is the executor's
 * egress.ts, shared, applied in the sender on the address actually connected to.
 */
import type { PartnerConfig } from '../../core/contracts/index.ts';
import { entryMatch } from '../executor/egress.ts';

export type Routing =
  | { ok: true; partner: PartnerConfig; host: string }
  | { ok: false; reason: 'invalid-url' | 'unknown-partner' | 'undeclared-host' | 'unattributed-host' | 'ambiguous-host'; partner: string | null; host: string };

/** Partner id → configuration, built once per partner list. */
export type PartnerIndex = ReadonlyMap<string, PartnerConfig>;

export function indexPartners(partners: readonly PartnerConfig[]): PartnerIndex {
  return new Map(partners.map((p) => [p.id, p]));
}

function declares(partner: PartnerConfig, url: URL): boolean {
  return partner.captureHosts.some((entry) => entryMatch(entry, url) > 0);
}

/** The partner a request goes to, or why it must not be sent. */
export function routeRequest(partners: PartnerIndex, partnerId: string | null, url: string): Routing {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { ok: false, reason: 'invalid-url', partner: partnerId, host: '(invalid)' };
  }
  const host = u.host;
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, reason: 'invalid-url', partner: partnerId, host };
  if (partnerId !== null) {
    const partner = partners.get(partnerId);
    if (partner === undefined) return { ok: false, reason: 'unknown-partner', partner: partnerId, host };
    return declares(partner, u) ? { ok: true, partner, host } : { ok: false, reason: 'undeclared-host', partner: partnerId, host };
  }
  const owners = [...partners.values()].filter((p) => declares(p, u));
  if (owners.length === 1 && owners[0] !== undefined) return { ok: true, partner: owners[0], host };
  return { ok: false, reason: owners.length === 0 ? 'unattributed-host' : 'ambiguous-host', partner: null, host };
}
