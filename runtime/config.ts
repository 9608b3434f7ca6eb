/**
 * Settings of every command, validated once at the edge (zod). Precedence, lowest first:
 * defaults < --config JSON file < environment variables < command-line flags.
 * Every setting is documented in the README ("Settings"); keep the two in step.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { InvalidInputError } from './errors.ts';

const hostPort = z.string().regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'expected host:port');

export const SettingsSchema = z
  .object({
    /** Bootstrap brokers; empty = the embedded in-process broker. */
    brokers: z.array(hostPort).default([]),
    client: z.enum(['platformatic', 'kafkajs']).default('platformatic'),
    clientId: z.string().min(1).default('tagstream'),
    topics: z
      .object({
        events: z.string().min(1).default('tracking.events'),
        cookies: z.string().min(1).default('tracking.cookies'),
        requests: z.string().min(1).default('tracking.requests'),
        requestsDlq: z.string().min(1).default('tracking.requests.dlq'),
        eventsDlq: z.string().min(1).default('tracking.events.dlq'),
      })
      .strict()
      .prefault({}),
    /** Partitions of events and cookies (co-partitioned) when `topics create` makes them. */
    partitions: z.number().int().min(1).max(10_000).default(6),
    /** Partitions of the requests and DLQ topics. */
    requestPartitions: z.number().int().min(1).max(10_000).default(6),
    /** Replication factor for created topics; -1 = the broker's default.replication.factor. */
    replicationFactor: z.number().int().min(-1).max(32).refine((n) => n !== 0, 'must not be 0').default(-1),
    groups: z
      .object({
        processor: z.string().min(1).default('tagstream-processor'),
        dispatcher: z.string().min(1).default('tagstream-dispatcher'),
      })
      .strict()
      .prefault({}),
    connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    requestTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  })
  .strict();

export type Settings = z.infer<typeof SettingsSchema>;
export type SettingsInput = z.input<typeof SettingsSchema>;

/** Environment variables → setting paths. */
export const ENV_SETTINGS: Record<string, { path: string[]; parse: (v: string) => unknown }> = {
  KAFKA_BROKERS: { path: ['brokers'], parse: splitList },
  KAFKA_CLIENT: { path: ['client'], parse: (v) => v },
  KAFKA_CLIENT_ID: { path: ['clientId'], parse: (v) => v },
  TOPIC_EVENTS: { path: ['topics', 'events'], parse: (v) => v },
  TOPIC_COOKIES: { path: ['topics', 'cookies'], parse: (v) => v },
  TOPIC_REQUESTS: { path: ['topics', 'requests'], parse: (v) => v },
  TOPIC_REQUESTS_DLQ: { path: ['topics', 'requestsDlq'], parse: (v) => v },
  TOPIC_EVENTS_DLQ: { path: ['topics', 'eventsDlq'], parse: (v) => v },
  TOPIC_PARTITIONS: { path: ['partitions'], parse: Number },
  TOPIC_REQUEST_PARTITIONS: { path: ['requestPartitions'], parse: Number },
  TOPIC_REPLICATION_FACTOR: { path: ['replicationFactor'], parse: Number },
  GROUP_PROCESSOR: { path: ['groups', 'processor'], parse: (v) => v },
  GROUP_DISPATCHER: { path: ['groups', 'dispatcher'], parse: (v) => v },
  KAFKA_CONNECT_TIMEOUT_MS: { path: ['connectTimeoutMs'], parse: Number },
  KAFKA_REQUEST_TIMEOUT_MS: { path: ['requestTimeoutMs'], parse: Number },
};

function splitList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

export interface LoadSettingsOptions {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags (already shaped like Settings), highest precedence. */
  flags?: SettingsInput;
}

export function loadSettings(options: LoadSettingsOptions = {}): Settings {
  const merged: Record<string, unknown> = {};
  if (options.configFile) {
    let text: string;
    try {
      text = readFileSync(options.configFile, 'utf8');
    } catch (err) {
      throw new InvalidInputError('--config', `cannot read ${options.configFile}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InvalidInputError('--config', `${options.configFile} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidInputError('--config', `${options.configFile} must hold a JSON object`);
    }
    Object.assign(merged, parsed);
  }
  const env = options.env ?? process.env;
  for (const [name, { path, parse }] of Object.entries(ENV_SETTINGS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(merged, path, parse(raw));
  }
  for (const [key, value] of Object.entries(options.flags ?? {})) {
    if (value !== undefined) merged[key] = value;
  }
  const result = SettingsSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : 'settings';
    const envName = Object.entries(ENV_SETTINGS).find(([, s]) => field === s.path.join('.') || field.startsWith(`${s.path.join('.')}.`))?.[0];
    throw new InvalidInputError(envName ? `${field} (${envName})` : field, issue?.message ?? 'invalid');
  }
  return result.data;
}
