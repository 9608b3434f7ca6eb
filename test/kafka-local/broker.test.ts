import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { realBroker } from '../helpers/kafka.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return predicate();
}

describe('local Kafka broker (runtime/kafka-local)', function () {
  this.timeout(120_000);

  it('the shared test broker accepts TCP connections on 127.0.0.1', async () => {
    const [hostPort] = realBroker().brokers;
    const [host, port] = (hostPort ?? '').split(':');
    expect(host).to.equal('127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host, port: Number(port) }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', reject);
    });
  });

  it('dies with its owner: kill -9 of the Node process that started it takes the JVM down', async () => {
    const script = `
      import { startLocalBroker } from './runtime/kafka-local/broker.ts';
      const b = await startLocalBroker({ heapMb: 256 });
      process.stdout.write(JSON.stringify({ pid: b.pid }) + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const javaPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve((JSON.parse(line) as { pid: number }).pid);
      });
      child.on('exit', (code) => reject(new Error(`starter exited early with ${code}`)));
    });
    expect(alive(javaPid)).to.equal(true);
    child.kill('SIGKILL');
    expect(await waitFor(() => !alive(javaPid), 20_000), 'JVM still running after its owner was killed').to.equal(true);
  });
});
