/**
 * One process, several roles (DESIGN.md "Commands": `run [collector] [processor] [dispatcher]`):
 * starts the named roles in order behind one HTTP endpoint (/health, /ready, /metrics) and owns
 * the process's life cycle.
 *
 *   const running = await startRoles([processor], { metrics: settings.metrics, sources: [probe], logger });
 *   await running.closed;   // resolves after a graceful stop, rejects with the error of a failed role
 *
 * - /ready is the conjunction of every role's readiness, every source's (the broker probe) and
 *   "not draining"; a role still starting says so;
 * - the endpoint listens before the first role starts, so /health answers (and /ready says why
 *   not) while a role restores its state, and a port in use fails before any broker is contacted;
 * - SIGTERM/SIGINT (runtime/runner/shutdown.ts): /ready turns 503 at once (draining), then the
 *   roles stop in reverse order, then the sources and the endpoint close; a second signal exits 130;
 * - a role whose `closed` rejects stops the others the same way, and `closed` rejects with its
 *   error: the CLI turns that into exit code 1.
 */
import { register as globalRegistry, type Registry } from 'prom-client';
import { settledWithin } from '../../core/async.ts';
import type { Logger } from '../../core/log.ts';
import { startHttpServer, type HttpServer } from '../http/server.ts';
import { onShutdownSignals } from '../runner/shutdown.ts';
import { combineReadiness, type Readiness, type Role } from './role.ts';

/** Something besides the roles that /ready consults, started before the roles and closed after them. */
export interface ReadinessSource {
  readiness(): Readiness;
  start?(): void;
  close?(): Promise<void>;
}

export interface StartRolesOptions {
  /** The `metrics.*` settings: where the endpoint listens; port 0 = no endpoint (the setting's meaning). */
  metrics: { host: string; port: number };
  /** Overrides `metrics.port`; here 0 means a free port (tests read it from `address`). */
  port?: number;
  /** Served on /metrics. Default prom-client's global registry (where the executor's metrics live). */
  registry?: Registry;
  /** The broker probe, and any other process-wide check. */
  sources?: readonly ReadinessSource[];
  logger?: Logger;
  /** Signals that stop the process gracefully. Default SIGTERM and SIGINT; [] = none (tests). */
  signals?: readonly NodeJS.Signals[];
  /** Passed to each role's stop(); default the role's own. */
  stopTimeoutMs?: number;
  /** Called with 130 on a second signal (the operator insists). Default process.exit. */
  exit?: (code: number) => void;
}

export interface RunningRoles {
  /** Where /health, /ready and /metrics are served; undefined when the endpoint is off. */
  readonly address: { host: string; port: number } | undefined;
  /** What GET /ready answers now. */
  readiness(): Readiness;
  /** Drains (/ready 503 at once), stops the roles in reverse order, closes the endpoint. Idempotent; settles like `closed`. */
  stop(): Promise<void>;
  /** Resolves after a graceful stop; rejects with the error of the role that failed (or failed to stop). */
  readonly closed: Promise<void>;
}

type Phase = 'waiting' | 'starting' | 'started';

export async function startRoles(roles: readonly Role[], options: StartRolesOptions): Promise<RunningRoles> {
  const log = options.logger;
  const sources = options.sources ?? [];
  const phases = new Map<Role, Phase>(roles.map((r) => [r, 'waiting']));
  let draining = false;
  let failure: unknown;

  const readiness = (): Readiness => {
    const checks: Readiness[] = draining ? [{ ready: false, reasons: ['draining: the process is shutting down'] }] : [];
    for (const role of roles) {
      const phase = phases.get(role);
      if (phase === 'started') checks.push(roleReadiness(role));
      else checks.push({ ready: false, reasons: [`${role.name}: ${phase === 'starting' ? 'starting' : 'not started'}`] });
    }
    for (const source of sources) checks.push(source.readiness());
    return combineReadiness(checks);
  };

  const port = options.port ?? (options.metrics.port === 0 ? undefined : options.metrics.port);
  const server: HttpServer | undefined =
    port === undefined ? undefined : await startHttpServer(options.registry ?? globalRegistry, { host: options.metrics.host, port, readiness, routes: roles.flatMap((r) => r.routes ?? []) });
  if (server) log?.info({ endpoint: `http://${server.address.host}:${server.address.port}`, paths: ['/health', '/ready', '/metrics'] }, 'HTTP endpoint listening');
  for (const source of sources) source.start?.();

  let startLoop: Promise<void> = Promise.resolve();
  let disposeSignals = (): void => undefined;

  const shutdown = async (): Promise<void> => {
    log?.info({ roles: roles.map((r) => r.name) }, 'draining: /ready answers 503, stopping the roles');
    // A role being started is stopped once its start settled; the ones after it never start.
    await startLoop.catch(() => undefined);
    const errors: unknown[] = [];
    for (const role of [...roles].reverse()) {
      if (phases.get(role) === 'waiting') continue;
      try {
        await role.stop(options.stopTimeoutMs);
      } catch (error) {
        log?.error({ err: error, role: role.name }, 'stopping a role failed');
        errors.push(error);
      }
      // The role contract: closed settles after stop(). Bounded, so a broken role cannot hang the exit.
      if (!(await settledWithin(role.closed, 5000))) log?.warn({ role: role.name }, 'role did not settle `closed` after stop()');
    }
    await Promise.allSettled(sources.map((s) => s.close?.()));
    await server?.close();
    disposeSignals();
    const cause = failure ?? errors[0];
    if (cause !== undefined) throw cause;
    log?.info('stopped');
  };

  let resolveClosed!: () => void;
  let rejectClosed!: (error: unknown) => void;
  const closed = new Promise<void>((resolve, reject) => {
    resolveClosed = resolve;
    rejectClosed = reject;
  });
  closed.catch(() => undefined); // the caller observes it; never an unhandled rejection from here
  const stop = (): Promise<void> => {
    if (!draining) {
      // Draining first and synchronously: the next /ready probe already sees it.
      draining = true;
      shutdown().then(resolveClosed, rejectClosed);
    }
    return closed;
  };

  for (const role of roles) {
    role.closed.then(
      () => {
        if (!draining) {
          log?.warn({ role: role.name }, 'a role ended on its own: stopping the process');
          void stop();
        }
      },
      (error: unknown) => {
        // Even while stopping (a failed drain): the process must not report success.
        failure ??= error;
        log?.error({ err: error, role: role.name }, 'a role failed: stopping the process');
        void stop();
      },
    );
  }

  disposeSignals = onShutdownSignals(() => stop(), {
    signals: options.signals ?? ['SIGTERM', 'SIGINT'],
    ...(log === undefined ? {} : { logger: log }),
    exit: (code) => {
      // 0 and 1 are reported through `closed`; only the operator's second signal ends things here.
      if (code === 130) (options.exit ?? ((c: number) => process.exit(c)))(130);
    },
  });

  startLoop = (async () => {
    for (const role of roles) {
      if (draining) return;
      phases.set(role, 'starting');
      await role.start();
      phases.set(role, 'started');
      log?.info({ role: role.name }, 'role started');
    }
  })();
  try {
    await startLoop;
  } catch (error) {
    failure ??= error;
    await stop().catch(() => undefined);
    throw error;
  }
  return { address: server?.address, readiness, stop, closed };
}

function roleReadiness(role: Role): Readiness {
  try {
    return role.readiness();
  } catch (error) {
    return { ready: false, reasons: [`${role.name}: readiness check failed (${error instanceof Error ? error.message : String(error)})`] };
  }
}
