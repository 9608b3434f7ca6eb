/**
 * `run collector` as an operator starts it (child process): `--collector-port 0` prints the port
 * in the log, a POST is answered 204 and its event is on the topic, both ports answer /ready, and
 * SIGTERM exits 0. On the embedded default too. `run dispatcher` still exits 2.
 */
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { loadSettings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { createTopics } from '../../runtime/topics.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { eventually } from './browser.ts';
import { pageView, post, readTopic } from './helpers.ts';

interface Started {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
  stderr: () => string;
}

async function startRun(args: string[], env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', STATE_STORE: 'memory', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const port = await eventually(45_000, async () => {
    const line = stderr.split('\n').find((l) => l.includes('"collector listening"'));
    return line === undefined ? undefined : (JSON.parse(line) as { port: number }).port;
  });
  if (port === undefined) {
    child.kill('SIGKILL');
    throw new Error(`no "collector listening" line; stderr: ${stderr.slice(-1500)}`);
  }
  return { child, port, exited, stderr: () => stderr };
}

describe('collector: `run collector`', function () {
  this.timeout(90_000);

  it('on a real broker: --collector-port 0, 204, the event on the topic, /ready on both ports, SIGTERM exits 0', async () => {
    const brokers = realBroker().brokers;
    const prefix = uniqueTopic('runc');
    const topics = { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-rdlq`, eventsDlq: `${prefix}-edlq` };
    const client = createKafkaClient('platformatic', { brokers, clientId: 'run-collector-test' });
    const admin = await client.admin();
    try {
      await createTopics(admin, loadSettings({ env: {}, flags: { brokers, topics, partitions: 2, requestPartitions: 1 } }));
    } finally {
      await admin.close();
    }
    const metricsPort = await freePort();
    const run = await startRun(['collector', '--collector-port', '0'], {
      KAFKA_BROKERS: brokers.join(','),
      TOPIC_EVENTS: topics.events,
      TOPIC_COOKIES: topics.cookies,
      TOPIC_REQUESTS: topics.requests,
      TOPIC_REQUESTS_DLQ: topics.requestsDlq,
      TOPIC_EVENTS_DLQ: topics.eventsDlq,
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      COLLECTOR_HOST: '127.0.0.1',
      COLLECTOR_PORT: '8080',
      PARTNERS_FILE: '',
    });
    try {
      const url = `http://127.0.0.1:${run.port}`;
      expect(run.port).to.not.equal(8080);
      const ready = await eventually(20_000, async () => ((await request(`${url}/ready`)).statusCode === 200 ? true : undefined));
      expect(ready, run.stderr().slice(-1000)).to.equal(true);
      expect((await request(`http://127.0.0.1:${metricsPort}/ready`)).statusCode).to.equal(200);
      const answer = await post(url, JSON.stringify(pageView({ userId: 'run-visitor' })));
      expect(answer.status, answer.body).to.equal(204);
      const metrics = await (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body.text();
      expect(metrics).to.match(/tagstream_collector_requests_total\{outcome="accepted"\} 1/);
      const onTopic = await readTopic(client, topics.events, 2);
      expect(onTopic.map((r) => r.key)).to.deep.equal(['run-visitor']);
      expect(run.stderr()).to.not.contain('127.0.0.1, ').and.not.contain('run-visitor');
    } finally {
      run.child.kill('SIGTERM');
      await client.close();
    }
    expect(await run.exited, run.stderr().slice(-1000)).to.equal(0);
  });

  it('on the embedded default: a curl-like POST is 204', async () => {
    const run = await startRun(['collector'], { KAFKA_BROKERS: '', METRICS_PORT: '0', COLLECTOR_HOST: '127.0.0.1', COLLECTOR_PORT: '0' });
    try {
      const answer = await post(`http://127.0.0.1:${run.port}`, JSON.stringify(pageView()));
      expect(answer.status, answer.body).to.equal(204);
      expect(String(answer.headers['set-cookie'])).to.match(/^tsuid=/);
    } finally {
      run.child.kill('SIGTERM');
    }
    expect(await run.exited, run.stderr().slice(-1000)).to.equal(0);
  });

  it('`run dispatcher` without partners: exit 2 naming --partners; a bad --collector-port: exit 2 naming the setting', () => {
    const dispatcher = spawnSync(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', 'dispatcher'], { encoding: 'utf8', env: { ...process.env, KAFKA_BROKERS: '', PARTNERS_FILE: '' } });
    expect(dispatcher.status).to.equal(2);
    expect(dispatcher.stderr.trim()).to.equal('error: --partners: the dispatcher needs the partner configurations: --partners partners.json (or PARTNERS_FILE)');
    const port = spawnSync(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', 'collector', '--collector-port', 'x'], { encoding: 'utf8', env: { ...process.env, KAFKA_BROKERS: '' } });
    expect(port.status).to.equal(2);
    expect(port.stderr).to.match(/collector\.port \(COLLECTOR_PORT\)/);
  });
});
