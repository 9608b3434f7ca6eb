/**
 * A role is one unit of the product that `run` can start in a process (DESIGN.md "Commands"):
 * collector, processor, dispatcher. Each is wiring around its own topology or server; the process
 * composes the named ones and serves GET /health (alive) and GET /ready (every role ready, the
 * broker reachable, not draining) for all of them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RoleName = 'collector' | 'processor' | 'dispatcher';

export interface Readiness {
  ready: boolean;
  /** Why not, one short line each (`processor: 2 of 6 partitions restoring`); empty when ready. */
  reasons: string[];
}

export interface Role {
  readonly name: RoleName;
  /** Starts the role; resolves once it runs (joined its group, listening…). */
  start(): Promise<void>;
  /** Graceful stop: drain up to `timeoutMs`, commit, release. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
  /** Whether the role can take traffic now (cheap: called on every /ready probe). */
  readiness(): Readiness;
  /** Settles when the role stopped: resolves after stop(), rejects with the error that stopped it. */
  readonly closed: Promise<void>;
  /** Extra GET routes the role serves on the process's HTTP endpoint (beside /health, /ready, /metrics). */
  readonly routes?: readonly HttpRoute[];
}

/** A GET (and HEAD) route under `prefix` (`/jars/`); `rest` is the path after it, undecoded. */
export interface HttpRoute {
  readonly prefix: string;
  handle(req: IncomingMessage, res: ServerResponse, rest: string): void;
}

export const READY: Readiness = Object.freeze({ ready: true, reasons: [] }) as Readiness;

/** Combines readiness checks: ready when all are, with every reason. */
export function combineReadiness(checks: readonly Readiness[]): Readiness {
  const reasons = checks.flatMap((c) => (c.ready ? [] : c.reasons));
  return { ready: checks.every((c) => c.ready), reasons };
}
