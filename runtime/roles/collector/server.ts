/**
 * The collector role (DESIGN.md "The first-party tag and the collector"): a fastify server on its
 * own port (`collector.host:collector.port`) with GET /tag.js, POST /collect, /health and /ready,
 * producing accepted events to `topics.events` keyed by userId.
 *
 *   const role = createCollectorRole({ settings, client, registry, logger, readiness: () => running.readiness() });
 *   await role.start();  role.address  // { host, port }
 *   await role.stop();   // /ready 503 at once, in-flight requests finish, then the producer closes
 */
import cookie from '@fastify/cookie';
import cors from '@fastify/cors';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { register as globalRegistry, type Registry } from 'prom-client';
import { componentLogger, type Logger } from '../../../core/log.ts';
import type { Settings } from '../../config.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { combineReadiness, type Readiness, type Role } from '../role.ts';
import { trustedProxies } from './client-ip.ts';
import { collectorMetrics } from './metrics.ts';
import { EventProducer } from './produce.ts';
import { collectorRoutes, errorBody } from './routes.ts';
import type { CollectorSettings } from './settings.ts';

export interface CollectorOptions {
  settings: Settings;
  client: KafkaClient;
  registry?: Registry;
  logger?: Logger;
  /**
   * The process's readiness (broker probe, other roles, draining) for this port's /ready; default
   * the collector's own state only. A getter, because the composition exists after the role.
   */
  readiness?: () => Readiness | undefined;
  /** Receipt clock (tests). */
  now?: () => number;
}

export interface CollectorRole extends Role {
  /** Where the collector listens, once started. */
  readonly address: { host: string; port: number } | undefined;
}

/** The fastify instance with the collector's plugins and routes, not listening (tests inject into it). */
export async function buildCollectorApp(options: {
  settings: CollectorSettings;
  producer: EventProducer;
  readiness: () => Readiness;
  registry: Registry;
  logger: Logger;
  now?: () => number;
  /** True once the role stops: answers then close their connection, so kept-alive clients reconnect elsewhere. */
  draining?: () => boolean;
}): Promise<FastifyInstance> {
  const { settings } = options;
  // No fastify request logging: it would print every visitor's address at info level.
  const app = Fastify({ logger: false, bodyLimit: settings.bodyLimitBytes, requestTimeout: 15_000, return503OnClosing: true, forceCloseConnections: 'idle' });
  await app.register(cookie);
  const allowed = new Set(settings.allowedOrigins);
  await app.register(cors, {
    // Credentials allowed, so the cookie travels; an origin outside the list gets no CORS headers.
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST'],
    maxAge: 600,
  });
  // text/plain is what the tag sends (CORS-safelisted: no preflight); any type is read as bytes,
  // the handler parses, so every failure has the collector's own 400 shape.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((error: FastifyError, _req, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) return reply.code(413).send(errorBody('ERR_INVALID_INPUT', 'body', `larger than ${settings.bodyLimitBytes} bytes (collector.bodyLimitBytes)`));
    if (status >= 400 && status < 500) return reply.code(status).send(errorBody('ERR_INVALID_INPUT', 'body', error.message));
    options.logger.error({ err: error }, 'collector: request failed');
    return reply.code(500).send({ error: { code: 'ERR_INTERNAL', field: 'body', reason: 'internal error' } });
  });
  const draining = options.draining;
  if (draining !== undefined) {
    // Node's close() drops only the connections idle at that moment; one busy then would stay
    // open for its keep-alive time after its answer.
    app.addHook('onSend', (_req, reply, payload, done) => {
      if (draining()) reply.header('connection', 'close');
      done(null, payload);
    });
  }
  const metrics = collectorMetrics(options.registry, () => options.producer.inFlight);
  collectorRoutes(app, {
    settings,
    producer: options.producer,
    trusted: trustedProxies(settings.trustedProxies),
    readiness: options.readiness,
    metrics,
    logger: options.logger,
    now: options.now ?? Date.now,
  });
  return app;
}

export function createCollectorRole(options: CollectorOptions): CollectorRole {
  const settings = options.settings.collector;
  const log = componentLogger(options.logger, 'collector');
  const producer = new EventProducer({
    client: options.client,
    topic: options.settings.topics.events,
    clientId: `${options.settings.clientId}-collector`,
    produceTimeoutMs: settings.produceTimeoutMs,
    maxInFlight: settings.maxInFlight,
    logger: log,
  });
  let app: FastifyInstance | undefined;
  let address: { host: string; port: number } | undefined;
  let phase: 'created' | 'starting' | 'running' | 'draining' = 'created';
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let stopping: Promise<void> | undefined;

  const own = (): Readiness => {
    if (phase === 'draining') return { ready: false, reasons: ['collector: draining'] };
    if (phase !== 'running') return { ready: false, reasons: ['collector: starting'] };
    if (producer.inFlight >= settings.maxInFlight) return { ready: false, reasons: ['collector: too many events waiting for the broker'] };
    return { ready: true, reasons: [] };
  };
  const portReadiness = (): Readiness => {
    const processWide = options.readiness?.();
    return processWide === undefined ? own() : combineReadiness([own(), processWide]);
  };

  return {
    name: 'collector',
    closed,
    get address() {
      return address;
    },
    async start() {
      phase = 'starting';
      await producer.open();
      app = await buildCollectorApp({
        settings,
        producer,
        readiness: portReadiness,
        registry: options.registry ?? globalRegistry,
        logger: log,
        draining: () => phase === 'draining',
        ...(options.now === undefined ? {} : { now: options.now }),
      });
      try {
        await app.listen({ host: settings.host, port: settings.port });
      } catch (error) {
        await producer.close(0);
        throw error;
      }
      const bound = app.server.address() as AddressInfo;
      address = { host: bound.address, port: bound.port };
      phase = 'running';
      log.info({ endpoint: `http://${bound.address.includes(':') ? `[${bound.address}]` : bound.address}:${bound.port}`, port: bound.port, topic: options.settings.topics.events }, 'collector listening');
    },
    stop(timeoutMs?: number) {
      stopping ??= (async () => {
        phase = 'draining';
        const budget = timeoutMs ?? settings.shutdownTimeoutMs;
        await drainAndClose(app, producer, budget).finally(resolveClosed);
      })();
      return stopping;
    },
    readiness: own,
  };
}

/**
 * fastify's close stops accepting, answers 503 to new requests on kept-alive connections and waits
 * for the in-flight ones; past the budget they are cut. Then the producer waits for its acks.
 */
async function drainAndClose(app: FastifyInstance | undefined, producer: EventProducer, budget: number): Promise<void> {
  if (app !== undefined) {
    const server = app.server;
    const timer = setTimeout(() => server.closeAllConnections(), budget);
    timer.unref();
    await app.close().finally(() => clearTimeout(timer));
  }
  await producer.close(budget);
}
