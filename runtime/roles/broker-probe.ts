/**
 * Whether the Kafka cluster answers, for GET /ready: a bounded `listTopics()` every `intervalMs`,
 * whose last result `readiness()` returns synchronously (a probe request must never wait on Kafka).
 *
 * One probe at a time (the next is scheduled after the previous settled), each bounded by
 * `timeoutMs`; the timer is unref'd so the probe never keeps a process alive. A failed probe drops
 * its admin connection and the next one opens a fresh one: a client whose connection broke is not
 * trusted to recover by itself. The embedded broker lives in this process: always reachable.
 */
import { withTimeout } from '../../core/async.ts';
import type { Logger } from '../../core/log.ts';
import type { KafkaAdmin, KafkaClient } from '../kafka/types.ts';
import { READY, type Readiness } from './role.ts';

export interface BrokerProbeOptions {
  client: KafkaClient;
  /** Time between the end of a probe and the start of the next. Default 5000. */
  intervalMs?: number;
  /** Budget of one probe (connect + listTopics). Default 2000. */
  timeoutMs?: number;
  logger?: Logger;
}

export interface BrokerProbe {
  /** The last probe's verdict ("kafka: broker unreachable (…)" when it failed). */
  readiness(): Readiness;
  /** Starts probing (the first probe at once). Idempotent. */
  start(): void;
  /** Runs one probe now (or joins the one in flight) and returns its verdict. */
  check(): Promise<Readiness>;
  /** Stops probing and closes the probe's admin connection. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_PROBE_INTERVAL_MS = 5000;
export const DEFAULT_PROBE_TIMEOUT_MS = 2000;

export function createBrokerProbe(options: BrokerProbeOptions): BrokerProbe {
  if (options.client.kind === 'embedded') return alwaysReady();
  const { client, logger } = options;
  const intervalMs = options.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  let last: Readiness = { ready: false, reasons: ['kafka: broker not probed yet'] };
  let admin: Promise<KafkaAdmin> | undefined;
  let inFlight: Promise<Readiness> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let closed = false;

  const dropAdmin = (): Promise<void> => {
    const stale = admin;
    admin = undefined;
    // An admin() still connecting when the probe timed out is closed once it arrives.
    return stale === undefined ? Promise.resolve() : stale.then((a) => a.close()).catch(() => undefined);
  };

  const probeOnce = async (): Promise<Readiness> => {
    try {
      await withTimeout('kafka readiness probe', timeoutMs, async () => {
        admin ??= client.admin();
        await (await admin).listTopics();
      });
      if (!last.ready) logger?.info('kafka: broker reachable');
      return READY;
    } catch (error) {
      void dropAdmin();
      const reason = `kafka: broker unreachable (${error instanceof Error ? error.message : String(error)})`;
      if (last.ready || last.reasons[0] !== reason) logger?.warn({ err: error }, 'kafka readiness probe failed');
      return { ready: false, reasons: [reason] };
    }
  };

  const schedule = (): void => {
    if (closed || !started) return;
    timer = setTimeout(() => {
      timer = undefined;
      void check().finally(schedule);
    }, intervalMs);
    timer.unref();
  };

  const check = (): Promise<Readiness> => {
    if (closed) return Promise.resolve(last);
    inFlight ??= probeOnce().then((verdict) => {
      inFlight = undefined;
      if (!closed) last = verdict;
      return verdict;
    });
    return inFlight;
  };

  return {
    readiness: () => last,
    start() {
      if (started || closed) return;
      started = true;
      void check().finally(schedule);
    },
    check,
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      last = { ready: false, reasons: ['kafka: probe closed'] };
      // Let a probe in flight settle first (bounded by timeoutMs), so its admin is closed too.
      await inFlight?.catch(() => undefined);
      await dropAdmin();
    },
  };
}

function alwaysReady(): BrokerProbe {
  return {
    readiness: () => READY,
    start: () => undefined,
    check: () => Promise.resolve(READY),
    close: () => Promise.resolve(),
  };
}
