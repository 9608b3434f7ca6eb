/**
 * Who the visitor is (DESIGN.md "The first-party tag and the collector"): a `userId` in the body
 * wins (sites that manage their own id); else the first-party cookie, set when absent. When the
 * purpose the id cookie needs (`collector.idConsent`) is not granted, no cookie is read or set and
 * the event gets a one-off id, so nothing links it to the visitor's other events.
 */
import { randomUUID } from 'node:crypto';

export interface VisitorIdPolicy {
  cookieName: string;
  idConsent?: string | undefined;
}

export interface VisitorId {
  userId: string;
  /** The cookie value to set on the answer; undefined = leave the cookie as it is. */
  setCookie: string | undefined;
  source: 'body' | 'cookie' | 'new' | 'one-off';
}

/** A value this collector could have set: anything else (a tampered or foreign cookie) is replaced. */
const OWN_ID = /^[A-Za-z0-9-]{16,64}$/;

export function visitorId(policy: VisitorIdPolicy, bodyUserId: string | undefined, cookie: string | undefined, consent: Readonly<Record<string, boolean>>): VisitorId {
  if (bodyUserId !== undefined) return { userId: bodyUserId, setCookie: undefined, source: 'body' };
  if (policy.idConsent !== undefined && consent[policy.idConsent] !== true) return { userId: randomUUID(), setCookie: undefined, source: 'one-off' };
  if (cookie !== undefined && OWN_ID.test(cookie)) return { userId: cookie, setCookie: undefined, source: 'cookie' };
  const id = randomUUID();
  return { userId: id, setCookie: id, source: 'new' };
}
