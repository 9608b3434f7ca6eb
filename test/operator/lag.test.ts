/**
 * `lag` on the real broker: records and seconds per partition (the age of the oldest unprocessed
 * record, from the record at the committed offset; 0 when caught up), the exported computeLag the
 * metrics reuse, `--watch` as a script sees it (one block per interval, SIGINT ends it with 0),
 * and the flag errors.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { computeLag, type PartitionLag } from '../../runtime/lag.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const HOUR = 3_600_000;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as an operator runs it; `until` lets a test act (SIGINT) once the output says so. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}, until?: (stdout: string) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', ...args], {
      cwd: root,
      env: { ...process.env, KAFKA_BROKERS: realBroker().brokers.join(','), LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      if (until !== undefined && !signalled && until(stdout)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The CLI on a pseudo-terminal (util-linux `script`); Ctrl-C is typed once `until` holds. */
function ttyCli(args: string[], until: (output: string) => boolean): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    // `exec`: script(1) runs the command through $SHELL -c; a shell that stays as the parent
    // (dash, the /bin/sh of Debian, when SHELL is unset as on CI) dies of the Ctrl-C itself and
    // reports 130 although the CLI handled it and exited 0.
    const command = ['exec', process.execPath, '--import', 'tsx', 'runtime/cli/main.ts', ...args].join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: root,
      env: { ...process.env, SHELL: '/bin/sh', KAFKA_BROKERS: realBroker().brokers.join(','), LOG_LEVEL: 'warn' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let typed = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString('utf8');
      if (!typed && until(output)) {
        typed = true;
        child.stdin.write('\x03');
      }
    });
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
  });
}

describe('lag (real broker)', function () {
  this.timeout(120_000);
  let client: KafkaClient;
  let topic: string;
  let group: string;
  const base = Date.now();

  before(async () => {
    client = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'lag-test' });
    topic = uniqueTopic('lag');
    group = `${topic}-group`;
    const admin = await client.admin();
    await admin.createTopics([{ name: topic, partitions: 2 }]);
    const producer = await client.producer();
    // Partition 0: three records an hour, half an hour and a minute old; partition 1: one.
    await producer.send([
      { topic, key: 'a', value: 'a0', partition: 0, timestamp: base - HOUR },
      { topic, key: 'a', value: 'a1', partition: 0, timestamp: base - HOUR / 2 },
      { topic, key: 'a', value: 'a2', partition: 0, timestamp: base - 60_000 },
      { topic, key: 'b', value: 'b0', partition: 1, timestamp: base - 10_000 },
    ]);
    await producer.close();
    // The group processed the first record of partition 0 and everything of partition 1.
    const consumer = client.consumer({ groupId: group, topics: [topic] });
    consumer.pause();
    await consumer.start({ onRecords: () => undefined });
    await consumer.commit([{ topic, partition: 0, offset: 1 }, { topic, partition: 1, offset: 1 }]);
    await consumer.close();
  });
  after(async () => {
    await client.close();
  });

  it('computeLag: records and the age of the record at the committed offset; 0 when caught up; null without a reader', async () => {
    const admin = await client.admin();
    const reader = client.reader();
    try {
      const rows = await computeLag(admin, group, topic, { reader, now: () => base });
      expect(rows.map((r) => [r.partition, r.endOffset, r.committedOffset, r.lag, r.lagSeconds])).to.deep.equal([
        [0, 3, 1, 2, 1800],
        [1, 1, 1, 0, 0],
      ]);
      const never = await computeLag(admin, `${group}-never`, topic, { reader, now: () => base });
      expect(never.map((r) => [r.committedOffset, r.lag, r.lagSeconds]), 'no commit: the whole log, aged by its first record').to.deep.equal([
        [-1, 3, 3600],
        [-1, 1, 10],
      ]);
      const withoutReader = await computeLag(admin, group, topic);
      expect(withoutReader.map((r) => r.lagSeconds)).to.deep.equal([null, null]);
    } finally {
      await reader.close();
    }
  });

  it('the CLI prints the lag in seconds (text and json) for a named group and topic', async () => {
    const json = await cli(['lag', '--group', group, '--topic', topic, '--format', 'json']);
    expect(json.status, json.stderr).to.equal(0);
    const rows = JSON.parse(json.stdout) as PartitionLag[];
    expect(rows.map((r) => [r.partition, r.lag])).to.deep.equal([[0, 2], [1, 0]]);
    // The age grows while the test runs: at least the half hour, far less than the hour.
    expect(rows[0]?.lagSeconds).to.be.within(1800, 3000);
    expect(rows[1]?.lagSeconds).to.equal(0);

    const text = await cli(['lag', '--group', group, '--topic', topic]);
    expect(text.status, text.stderr).to.equal(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^GROUP\s+TOPIC\s+PARTITION\s+END-OFFSET\s+COMMITTED\s+LAG\s+LAG-SECONDS$/);
    expect(lines[1]?.split(/\s+/).slice(2, 6)).to.deep.equal(['0', '3', '1', '2']);
    expect(Number(lines[1]?.split(/\s+/)[6])).to.be.within(1800, 3000);
    expect(lines[2]?.split(/\s+/).slice(2)).to.deep.equal(['1', '1', '1', '0', '0.0']);
  });

  it('--watch prints one block per interval when not on a terminal and stops on SIGINT with exit 0; --format json gives one line per interval', async () => {
    const blocks = (s: string): number => s.split('\n').filter((l) => l.startsWith('lag at ')).length;
    const text = await cli(['lag', '--group', group, '--topic', topic, '--watch', '--interval', '200ms'], {}, (out) => blocks(out) >= 3);
    expect(text.status, text.stderr).to.equal(0);
    expect(blocks(text.stdout)).to.be.at.least(3);
    expect(text.stdout).to.not.contain('\x1b[', 'no terminal: no redraw codes');

    const json = await cli(['lag', '--group', group, '--topic', topic, '--watch', '--interval', '200ms', '--format', 'json'], {}, (out) => out.split('\n').length > 2);
    expect(json.status, json.stderr).to.equal(0);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { at: string; rows: PartitionLag[] });
    expect(lines.length).to.be.at.least(2);
    for (const l of lines) expect(l.rows.map((r) => r.lag)).to.deep.equal([2, 0]);
  });

  it('--watch on a terminal redraws the screen each interval; Ctrl-C ends it with exit 0', async () => {
    const redraws = (out: string): number => out.split('\x1b[H\x1b[2J').length - 1;
    const run = await ttyCli(['lag', '--group', group, '--topic', topic, '--watch', '--interval', '200ms'], (out) => redraws(out) >= 3);
    expect(run.status, run.output).to.equal(0);
    expect(redraws(run.output)).to.be.at.least(3);
    expect(run.output).to.contain('(every 200ms, Ctrl-C to stop)');
  });

  it('bad flags exit 2 with one line naming the flag', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['lag', '--group', 'someone-else'], /^error: --topic: /],
      [['lag', '--interval', 'soon', '--watch'], /^error: --interval: /],
      [['lag', '--format', 'yaml'], /^error: --format: /],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      expect(run.status, args.join(' ')).to.equal(2);
      expect(run.stderr.trim().split('\n')).to.have.length(1);
      expect(run.stderr).to.match(message);
    }
  });
});
