/**
 * The processor's readiness for each of its own reasons, with the real pieces: a partition still
 * restoring its jars (the stream runtime, real broker, a restore held back at a gate), and the
 * browser pool without a browser (the role with real Chromium, its browser killed).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { parsePartners } from '../../core/contracts/index.ts';
import { silentLogger } from '../../core/log.ts';
import { loadSettings, type Settings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient, PartitionReader } from '../../runtime/kafka/types.ts';
import { createProcessorRole, startProcessor } from '../../runtime/roles/index.ts';
import { createTopics } from '../../runtime/topics.ts';
import type { Executor } from '../../topology/app/processor.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../runner/helpers.ts';

const noRequests: Executor = async () => ({ requests: [], jar: { cookies: [], localStorage: {} }, trackers: [] });

function settingsFor(prefix: string): Settings {
  return loadSettings({
    env: {},
    flags: {
      brokers: realBroker().brokers,
      partitions: 2,
      requestPartitions: 1,
      topics: { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-requests-dlq`, eventsDlq: `${prefix}-events-dlq` },
      groups: { processor: `${prefix}-processor` },
      state: { store: 'memory' },
      executor: { allowPrivateNetwork: true },
      runner: { sessionTimeoutMs: 10_000 },
    },
  });
}

/** The same client, except that every changelog restore waits until `open()` is called. */
function gatedClient(client: KafkaClient): { client: KafkaClient; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return {
    open,
    client: {
      kind: client.kind,
      producer: (o) => client.producer(o),
      consumer: (o) => client.consumer(o),
      admin: () => client.admin(),
      close: () => client.close(),
      reader(): PartitionReader {
        const inner = client.reader();
        return {
          read: async (...args) => {
            await gate;
            return inner.read(...args);
          },
          close: () => inner.close(),
        };
      },
    },
  };
}

describe('processor readiness, for each of its reasons', function () {
  this.timeout(90_000);

  it('not ready while a partition restores its jars, ready once restored', async () => {
    const settings = settingsFor(uniqueTopic('ready-restore'));
    const base = createKafkaClient('platformatic', { brokers: settings.brokers, clientId: 'ready-restore' });
    const admin = await base.admin();
    await createTopics(admin, settings);
    await admin.close();
    const gated = gatedClient(base);
    const processor = await startProcessor({ settings, client: gated.client, executor: noRequests, registry: new Registry(), logger: silentLogger() });
    try {
      await waitFor('partitions assigned', () => processor.status().partitions.length === 2, 30_000);
      const held = processor.readiness();
      expect(held.ready).to.equal(false);
      expect(held.reasons).to.deep.equal(['processor: 2 of 2 partitions restoring']);
      gated.open();
      await waitFor('restored', () => processor.readiness().ready, 30_000);
      expect(processor.readiness()).to.deep.equal({ ready: true, reasons: [] });
    } finally {
      gated.open();
      await processor.stop(5000);
      await base.close();
    }
  });

  it('the role: not ready while its browser pool has no browser (Chromium killed), ready again once replaced', async () => {
    const settings = settingsFor(uniqueTopic('ready-browser'));
    const client = createKafkaClient('platformatic', { brokers: settings.brokers, clientId: 'ready-browser' });
    const admin = await client.admin();
    await createTopics(admin, settings);
    await admin.close();
    const role = createProcessorRole({ settings, client, partners: parsePartners([{ id: 'p', html: '' }]), registry: new Registry(), logger: silentLogger() });
    expect(role.readiness()).to.deep.equal({ ready: false, reasons: ['processor: starting'] });
    await role.start();
    try {
      await waitFor('ready', () => role.readiness().ready, 30_000);
      // Our own Chromium: a child of this process (never another process's browser).
      const children = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([, comm]) => comm !== undefined && /chrom|headless/i.test(comm));
      expect(children.length, 'a browser child process').to.be.greaterThan(0);
      for (const [pid] of children) process.kill(Number(pid), 'SIGKILL');
      let reasons: string[] = [];
      await waitFor('not ready', () => {
        const r = role.readiness();
        reasons = r.reasons;
        return !r.ready;
      }, 10_000, 2);
      expect(reasons.join(' ')).to.match(/^executor: no browser connected/);
      await waitFor('ready again (browser replaced)', () => role.readiness().ready, 30_000);
    } finally {
      await role.stop(5000);
      await client.close();
    }
  });
});
