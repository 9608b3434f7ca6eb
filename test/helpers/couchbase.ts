/**
 * A real CouchbaseMock (Maven Central `com.couchbase.mock:CouchbaseMock`, resolved into
 * .infra/couchbase/CouchbaseMock.jar by runtime/kafka-local/pom.xml) for the jar cache's tests,
 * started as couchnode's own test harness (test/jcbmock.js) starts it:
 *
 *   java -jar CouchbaseMock.jar --cccp --harakiri-monitor 127.0.0.1:<ctl> --port 0 --nodes 1 --replicas 0 --vbuckets 32 --buckets default::couchbase
 *
 * The mock connects to our control socket and writes its REST port (NUL-terminated); when that
 * socket closes (this process died) it exits on its own, so no JVM outlives a test run. The SDK
 * then bootstraps on the key-value port: `nodes[0].ports.direct` of
 * `GET /pools/default/buckets/default` (basic auth Administrator/password), connection string
 * `couchbase://127.0.0.1:<kv>`. `--cccp` is what makes that work (docs/couchbase.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { resolve } from 'node:path';

export const MOCK_JAR = resolve('.infra/couchbase/CouchbaseMock.jar');

export interface CouchbaseMock {
  /** The mock's REST (cluster manager) port. */
  readonly restPort: number;
  /** The key-value (memcached) port of its one node. */
  readonly kvPort: number;
  /** `couchbase://127.0.0.1:<kv>`: what the SDK bootstraps on. */
  readonly connectionString: string;
  readonly bucket: 'default';
  readonly username: 'Administrator';
  readonly password: 'password';
  /** Moves the mock's clock forward (its `time_travel` command): document expiry without waiting. */
  timeTravel(seconds: number): Promise<void>;
  /** SIGKILL: the cluster is gone, as in an outage. Idempotent. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after 3 s. Idempotent. */
  stop(): Promise<void>;
}

export interface MockOptions {
  /** Carrier publication (config over the memcached protocol); without it couchbase 4.x cannot bootstrap. Default true. */
  cccp?: boolean;
}

const AUTH = `Basic ${Buffer.from('Administrator:password').toString('base64')}`;

export async function startCouchbaseMock(options: MockOptions = {}): Promise<CouchbaseMock> {
  if (!existsSync(MOCK_JAR)) throw new Error(`${MOCK_JAR} is missing: run scripts/install-infra.sh (it resolves CouchbaseMock from Maven Central)`);
  const control = createServer();
  await new Promise<void>((ok, fail) => {
    control.once('error', fail);
    control.listen(0, '127.0.0.1', () => ok());
  });
  const ctlPort = (control.address() as { port: number }).port;
  const args = [
    '-Xmx128m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-jar',
    MOCK_JAR,
    ...(options.cccp === false ? [] : ['--cccp']),
    '--harakiri-monitor',
    `127.0.0.1:${ctlPort}`,
    '--port',
    '0',
    '--nodes',
    '1',
    '--replicas',
    '0',
    '--vbuckets',
    '32',
    '--buckets',
    'default::couchbase',
  ];
  const child: ChildProcess = spawn('java', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));

  let socket: Socket | undefined;
  const restPort = await new Promise<number>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`CouchbaseMock did not report its port within 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`CouchbaseMock exited (${code}) before reporting its port: ${stderr}`));
    });
    control.once('connection', (s: Socket) => {
      socket = s;
      let buffered = Buffer.alloc(0);
      s.on('data', (data: Buffer) => {
        buffered = Buffer.concat([buffered, data]);
        const nul = buffered.indexOf(0);
        if (nul < 0) return;
        clearTimeout(timer);
        ok(Number(buffered.subarray(0, nul).toString('utf8')));
      });
      s.on('error', () => undefined);
    });
  });
  control.close();

  const res = await fetch(`http://127.0.0.1:${restPort}/pools/default/buckets/default`, { headers: { authorization: AUTH } });
  if (!res.ok) throw new Error(`CouchbaseMock REST answered ${res.status}`);
  const bucket = (await res.json()) as { nodes: Array<{ ports: { direct: number } }> };
  const kvPort = bucket.nodes[0]?.ports.direct;
  if (kvPort === undefined) throw new Error('CouchbaseMock: no node in the default bucket');

  let stopping: Promise<void> | undefined;
  const end = (signal: NodeJS.Signals): Promise<void> =>
    (stopping ??= (async () => {
      socket?.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    })());

  return {
    restPort,
    kvPort,
    connectionString: `couchbase://127.0.0.1:${kvPort}`,
    bucket: 'default',
    username: 'Administrator',
    password: 'password',
    async timeTravel(seconds: number) {
      const r = await fetch(`http://127.0.0.1:${restPort}/mock/time_travel?Offset=${seconds}`, { headers: { authorization: AUTH } });
      const body = (await r.json()) as { status?: string };
      if (body.status !== 'ok') throw new Error(`time_travel failed: ${JSON.stringify(body)}`);
    },
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
}
