/**
 * /ready of a real composition: the broker probe against the real broker of the root hook, and
 * `run processor` as an operator starts it (child process, real broker, Chromium): /ready becomes
 * 200, SIGTERM ends it with exit 0. Plus `run` on the embedded broker serving /metrics.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { loadSettings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { createBrokerProbe } from '../../runtime/roles/broker-probe.ts';
import { startRoles } from '../../runtime/roles/compose.ts';
import { READY, type Role } from '../../runtime/roles/role.ts';
import { createTopics } from '../../runtime/topics.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';

async function get(url: string): Promise<{ status: number; body: string; type: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text(), type: String(res.headers['content-type'] ?? '') };
}

/** A role that is always ready and stops when asked. */
function readyRole(): Role {
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  return { name: 'processor', closed, start: async () => undefined, stop: async () => resolveClosed(), readiness: () => READY };
}

describe('/ready against the real broker', function () {
  this.timeout(90_000);

  it('200 when every role is ready and the broker answers the probe', async () => {
    const client = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'ready-test' });
    const probe = createBrokerProbe({ client, intervalMs: 200 });
    const running = await startRoles([readyRole()], { metrics: { host: '127.0.0.1', port: 9464 }, port: 0, registry: new Registry(), sources: [probe], signals: [] });
    try {
      let last = { status: 0, body: '', type: '' };
      for (let i = 0; i < 100; i++) {
        last = await get(`http://127.0.0.1:${running.address!.port}/ready`);
        if (last.status === 200) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(last.status, last.body).to.equal(200);
      expect(JSON.parse(last.body)).to.deep.equal({ status: 'ready' });
    } finally {
      await running.stop();
      await client.close();
    }
  });

  it('`run processor` on the real broker: /ready becomes 200, SIGTERM exits 0', async () => {
    const prefix = uniqueTopic('ready');
    const topics = { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-requests-dlq`, eventsDlq: `${prefix}-events-dlq` };
    const brokers = realBroker().brokers;
    const settings = loadSettings({ env: {}, flags: { brokers, topics, partitions: 2, requestPartitions: 1 } });
    const admin = await createKafkaClient('platformatic', { brokers, clientId: 'ready-topics' }).admin();
    try {
      await createTopics(admin, settings);
    } finally {
      await admin.close();
    }
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', 'processor', '--partners', 'examples/partners.example.json'], {
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers.join(','),
        TOPIC_EVENTS: topics.events,
        TOPIC_COOKIES: topics.cookies,
        TOPIC_REQUESTS: topics.requests,
        TOPIC_REQUESTS_DLQ: topics.requestsDlq,
        TOPIC_EVENTS_DLQ: topics.eventsDlq,
        GROUP_PROCESSOR: `${prefix}-processor`,
        METRICS_HOST: '127.0.0.1',
        METRICS_PORT: String(port),
        EXECUTOR_ALLOW_PRIVATE_NETWORK: 'true',
        STATE_STORE: 'memory',
        PARTNERS_FILE: '',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const seen: string[] = [];
    try {
      let ready = false;
      const deadline = Date.now() + 60_000;
      while (!ready && Date.now() < deadline && child.exitCode === null) {
        try {
          const res = await get(`http://127.0.0.1:${port}/ready`);
          if (seen[seen.length - 1] !== res.body) seen.push(res.body.trim());
          ready = res.status === 200;
        } catch {
          // not listening yet
        }
        if (!ready) await new Promise((r) => setTimeout(r, 300));
      }
      expect(ready, `answers seen: ${seen.join(' | ')}; stderr: ${stderr.slice(-1000)}`).to.equal(true);
      expect((await get(`http://127.0.0.1:${port}/health`)).status).to.equal(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr.slice(-1000)).to.equal(0);
  });

  it('`run` on the embedded broker exposes runner and executor metrics, and stops on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', '--partners', 'examples/partners.example.json'], {
      env: { ...process.env, KAFKA_BROKERS: '', METRICS_HOST: '127.0.0.1', METRICS_PORT: String(port), COLLECTOR_PORT: '0', STATE_STORE: 'memory', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      let body = '';
      const deadline = Date.now() + 45_000;
      while (Date.now() < deadline) {
        try {
          const res = await get(`http://127.0.0.1:${port}/metrics`);
          if (res.status === 200 && /tagstream_runner_/.test(res.body)) {
            body = res.body;
            break;
          }
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(body, `no metrics; stderr: ${stderr.slice(-500)}`).to.match(/^tagstream_runner_in_flight[ {]/m);
      expect(body).to.match(/tagstream_executor_/);
      expect(body).to.match(/^nodejs_eventloop_lag_seconds /m);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr.slice(-500)).to.equal(0);
  });
});
