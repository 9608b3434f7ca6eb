/**
 * A collector role on a real broker for the collector suites: its own topic (tests share one
 * broker), read back whole to check what was produced.
 */
import { Registry } from 'prom-client';
import { request } from 'undici';
import { silentLogger } from '../../core/log.ts';
import { loadSettings, type SettingsInput } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { createCollectorRole, type CollectorRole } from '../../runtime/roles/collector/index.ts';
import type { CollectorSettings } from '../../runtime/roles/collector/settings.ts';
import { uniqueTopic } from '../helpers/kafka.ts';

export const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

export interface TestCollector {
  role: CollectorRole;
  client: KafkaClient;
  topic: string;
  url: string;
  registry: Registry;
  /** Every value on the topic now, parsed, with its key. */
  produced(): Promise<{ key: string; value: Record<string, unknown> }[]>;
  close(): Promise<void>;
}

export async function startTestCollector(brokers: string[], collector: Partial<CollectorSettings> = {}, extra: SettingsInput = {}): Promise<TestCollector> {
  const topic = uniqueTopic('collect');
  const client = createKafkaClient('platformatic', { brokers, clientId: 'collector-test', connectTimeoutMs: 3000, requestTimeoutMs: 3000 });
  const admin = await client.admin();
  try {
    await admin.createTopics([{ name: topic, partitions: 2 }]);
  } finally {
    await admin.close();
  }
  const settings = loadSettings({ env: {}, flags: { brokers, topics: { events: topic }, collector: { host: '127.0.0.1', port: 0, ...collector }, ...extra } });
  const registry = new Registry();
  const role = createCollectorRole({ settings, client, registry, logger: silentLogger() });
  await role.start();
  const url = `http://127.0.0.1:${role.address!.port}`;
  return {
    role,
    client,
    topic,
    url,
    registry,
    produced: () => readTopic(client, topic, 2),
    async close() {
      await role.stop(2000);
      await client.close();
    },
  };
}

export async function readTopic(client: KafkaClient, topic: string, partitions: number): Promise<{ key: string; value: Record<string, unknown> }[]> {
  const reader = client.reader();
  const out: { key: string; value: Record<string, unknown> }[] = [];
  try {
    for (let p = 0; p < partitions; p++) {
      await reader.read(topic, p, 0, (records) => {
        for (const r of records) out.push({ key: r.key?.toString() ?? '', value: JSON.parse(r.value?.toString() ?? 'null') as Record<string, unknown> });
      });
    }
  } finally {
    await reader.close();
  }
  return out;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(`${url}/collect`, { method: 'POST', body, headers: { 'content-type': 'text/plain', 'user-agent': BROWSER_UA, ...headers } });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

export function pageView(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'page_view', page: { url: 'https://www.shop.example/p/42', referrer: '', title: 'Product 42' }, ...extra };
}

/** The `tsuid=...` pair of a Set-Cookie header, or undefined. */
export function cookiePair(answer: Answer, name = 'tsuid'): string | undefined {
  const raw = answer.headers['set-cookie'];
  const all = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return all.find((c) => c.startsWith(`${name}=`))?.split(';')[0];
}
