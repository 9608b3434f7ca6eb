/**
 * The collector's routes as one fastify plugin: GET /tag.js, POST /collect, GET /health, GET /ready
 * (the load balancer probes the port it routes to). The answers are DESIGN.md's: 204 once the
 * broker acknowledged, 400 `{"error":{"code","field","reason"}}`, 413 over the size limit, 503
 * within `produceTimeoutMs` when the broker does not acknowledge.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isbot, isbotPattern } from 'isbot';
import type { Logger } from '../../../core/log.ts';
import type { Readiness } from '../role.ts';
import { checkShape, parseBody, toEvent } from './body.ts';
import { clientIp, maskIp, type TrustCheck } from './client-ip.ts';
import { visitorId } from './ids.ts';
import type { CollectorMetrics } from './metrics.ts';
import { stageSeries } from '../../metrics/pipeline.ts';
import type { EventProducer } from './produce.ts';
import type { CollectorSettings } from './settings.ts';
import { loadTag } from './tag.ts';

export interface CollectorRoutesOptions {
  settings: CollectorSettings;
  producer: EventProducer;
  trusted: TrustCheck;
  /** What GET /ready answers (the role's own state and the process's). */
  readiness: () => Readiness;
  metrics: CollectorMetrics;
  logger: Logger;
  now: () => number;
}

/**
 * The codes of the collector's error answers: the body was refused, the broker did not take the
 * event, this collector already holds `maxInFlight` events for the broker (it sheds load before
 * asking the broker), or it is shutting down (another instance takes the retry).
 */
type ErrorCode = 'ERR_INVALID_INPUT' | 'ERR_KAFKA_BROKER_UNREACHABLE' | 'ERR_COLLECTOR_OVERLOADED' | 'ERR_COLLECTOR_CLOSING';

export function errorBody(code: ErrorCode, field: string, reason: string): { error: { code: ErrorCode; field: string; reason: string } } {
  return { error: { code, field, reason } };
}

export function collectorRoutes(app: FastifyInstance, options: CollectorRoutesOptions): void {
  const tag = loadTag();

  app.get('/health', async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const state = options.readiness();
    reply.header('cache-control', 'no-store');
    return state.ready ? reply.send({ status: 'ready' }) : reply.code(503).send({ status: 'not-ready', reasons: state.reasons });
  });

  app.get('/tag.js', async (req, reply) => {
    reply.header('content-type', 'application/javascript; charset=utf-8').header('etag', tag.etag).header('vary', 'accept-encoding');
    // Cached an hour by browsers and CDNs, then revalidated by ETag (a new release reaches visitors within the hour).
    reply.header('cache-control', 'public, max-age=3600, stale-while-revalidate=86400');
    if (req.headers['if-none-match'] === tag.etag) return reply.code(304).send();
    if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) return reply.header('content-encoding', 'gzip').send(tag.gzip);
    return reply.send(tag.text);
  });

  // The accepted path's series, bound once: prom-client hashes a labels object on every call otherwise.
  const hot: HotSeries = {
    accepted: options.metrics.requests.labels({ outcome: 'accepted' }),
    produceOk: options.metrics.produceSeconds.labels({ result: 'ok' }),
    collected: stageSeries(options.metrics.pipeline, 'collected', null),
  };
  app.post('/collect', async (req, reply) => collect(req, reply, options, hot));
}

interface HotSeries {
  accepted: { inc(): void };
  produceOk: { observe(value: number): void };
  collected: { inc(): void };
}

async function collect(req: FastifyRequest, reply: FastifyReply, options: CollectorRoutesOptions, hot: HotSeries): Promise<FastifyReply> {
  const { settings, metrics } = options;
  reply.header('cache-control', 'no-store');
  const refuse = (outcome: string, field: string, reason: string): FastifyReply => {
    metrics.requests.inc({ outcome });
    return reply.code(outcome === 'forbidden-origin' ? 403 : 400).send(errorBody('ERR_INVALID_INPUT', field, reason));
  };
  const origin = req.headers.origin;
  if (origin !== undefined && !originAllowed(origin, req.headers.host, settings.allowedOrigins)) return refuse('forbidden-origin', 'origin', 'this site origin is not allowed (collector.allowedOrigins)');

  const raw = req.body;
  if (!Buffer.isBuffer(raw) || raw.length === 0) return refuse('invalid', 'body', 'is empty');
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    return refuse('invalid', 'body', 'is not valid JSON');
  }
  const problem = checkShape(value, settings);
  if (problem) return refuse('invalid', problem.field, problem.reason);
  const parsed = parseBody(withHeaderDefaults(value, req.headers['user-agent'], req.headers['accept-language']));
  if ('problem' in parsed) return refuse('invalid', parsed.problem.field, parsed.problem.reason);
  const body = parsed.body;

  if (settings.dropBots) {
    const header = req.headers['user-agent'];
    const ua = header !== undefined && botCheck(header) ? header : body.device.userAgent !== header && botCheck(body.device.userAgent) ? body.device.userAgent : undefined;
    if (ua !== undefined) {
      metrics.requests.inc({ outcome: 'bot' });
      metrics.bots.inc({ reason: (isbotPattern(ua) ?? 'unknown').slice(0, 64) });
      return reply.code(204).send();
    }
  }

  const id = visitorId(settings, body.userId, req.cookies[settings.cookieName], body.consent);
  if (id.setCookie !== undefined) {
    reply.setCookie(settings.cookieName, id.setCookie, {
      httpOnly: true,
      secure: true,
      sameSite: 'lax',
      path: '/',
      maxAge: settings.cookieMaxAgeDays * 86_400,
      ...(settings.cookieDomain === undefined ? {} : { domain: settings.cookieDomain }),
    });
  }
  const ip = clientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], options.trusted);
  const event = toEvent(body, { userId: id.userId, ip, receivedAt: options.now() });
  const started = performance.now();
  const outcome = await options.producer.produce(id.userId, JSON.stringify(event));
  const seconds = (performance.now() - started) / 1000;
  if (outcome.ok) {
    hot.produceOk.observe(seconds);
    hot.accepted.inc();
    hot.collected.inc();
    options.logger.debug({ eventId: event.eventId, type: event.type, idSource: id.source, ip: maskIp(ip) }, 'event accepted');
    return reply.code(204).send();
  }
  metrics.produceSeconds.observe({ result: outcome.reason }, seconds);
  metrics.requests.inc({ outcome: 'unavailable' });
  reply.code(503).header('retry-after', '1');
  if (outcome.reason === 'overloaded') {
    return reply.send(errorBody('ERR_COLLECTOR_OVERLOADED', 'collector', `too many events waiting for the broker (collector.maxInFlight ${settings.maxInFlight})`));
  }
  if (outcome.reason === 'closed') return reply.send(errorBody('ERR_COLLECTOR_CLOSING', 'collector', 'the collector is shutting down'));
  const reason = outcome.reason === 'timeout' ? `the broker did not acknowledge within ${settings.produceTimeoutMs} ms` : 'the broker refused or could not be reached';
  return reply.send(errorBody('ERR_KAFKA_BROKER_UNREACHABLE', 'broker', reason));
}

const BOT_CACHE_SIZE = 2048;
const botCache = new Map<string, boolean>();

/**
 * isbot with a bounded memo: real traffic carries few distinct user agents, and the pattern is
 * one large regex (the largest single cost of a request in the benchmark's profile).
 */
export function botCheck(ua: string): boolean {
  let verdict = botCache.get(ua);
  if (verdict === undefined) {
    verdict = isbot(ua);
    if (botCache.size >= BOT_CACHE_SIZE) botCache.clear();
    botCache.set(ua, verdict);
  }
  return verdict;
}

/** A configured site origin, or the collector's own origin (a page served from the collector's host). */
export function originAllowed(origin: string, host: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.includes(origin)) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * A body without `device.userAgent` / `device.language` (a server-to-server call, an old tag) gets
 * the request's own User-Agent and first Accept-Language tag: the visitor partners will see is the
 * one that sent the request, not a default browser.
 */
function withHeaderDefaults(value: unknown, userAgent: string | undefined, acceptLanguage: string | undefined): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const body = value as { device?: unknown };
  const device = typeof body.device === 'object' && body.device !== null && !Array.isArray(body.device) ? (body.device as Record<string, unknown>) : body.device === undefined ? {} : undefined;
  if (device === undefined) return value; // not an object: the schema names the field
  // The tag always sends both: no copy of the body then (this runs on every request).
  if (body.device !== undefined && device.userAgent !== undefined && device.language !== undefined) return value;
  const language = acceptLanguage?.split(',')[0]?.split(';')[0]?.trim();
  const filled = {
    ...device,
    ...(device.userAgent === undefined && userAgent ? { userAgent } : {}),
    ...(device.language === undefined && language ? { language } : {}),
  };
  return { ...body, device: filled };
}
