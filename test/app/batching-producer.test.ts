import { expect } from 'chai';
import { RecordTooLargeError } from '../../core/errors.ts';
import { BatchingProducer } from '../../runtime/streams/batching-producer.ts';
import type { KafkaProducer, ProduceRecord, RecordMetadata } from '../../runtime/kafka/types.ts';

/** A producer that records each request and acknowledges it when told to. */
function fakeProducer(): KafkaProducer & { requests: ProduceRecord[][]; ack(error?: Error): void } {
  const requests: ProduceRecord[][] = [];
  const pending: Array<{ resolve: (m: RecordMetadata[]) => void; reject: (e: unknown) => void; records: ProduceRecord[] }> = [];
  let offset = 0;
  return {
    requests,
    send(records) {
      requests.push([...records]);
      return new Promise((resolve, reject) => pending.push({ resolve, reject, records: [...records] }));
    },
    ack(error) {
      const p = pending.shift()!;
      if (error) p.reject(error);
      else p.resolve(p.records.map((r) => ({ topic: r.topic, partition: 0, offset: offset++ })));
    },
    close: () => Promise.resolve(),
  };
}

const rec = (v: string): ProduceRecord => ({ topic: 't', key: 'k', value: v });
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('BatchingProducer (runtime/streams)', () => {
  it('sends at once when idle, coalesces what arrives while a request is in flight, and gives each caller its own metadata', async () => {
    const inner = fakeProducer();
    const p = new BatchingProducer(inner);
    const a = p.send([rec('a')]);
    await tick();
    expect(inner.requests).to.have.length(1);
    const b = p.send([rec('b1'), rec('b2')]);
    const c = p.send([rec('c')]);
    await tick();
    expect(inner.requests, 'one request in flight at a time').to.have.length(1);
    inner.ack();
    expect((await a).map((m) => m.offset)).to.deep.equal([0]);
    await tick();
    expect(inner.requests[1]!.map((r) => r.value)).to.deep.equal(['b1', 'b2', 'c']);
    inner.ack();
    expect((await b).map((m) => m.offset)).to.deep.equal([1, 2]);
    expect((await c).map((m) => m.offset)).to.deep.equal([3]);
  });

  it('a failed request fails every caller in it, and later sends go on', async () => {
    const inner = fakeProducer();
    const p = new BatchingProducer(inner);
    const a = p.send([rec('a')]);
    const b = p.send([rec('b')]);
    await tick();
    inner.ack(new Error('broker down'));
    const results = await Promise.allSettled([a, b]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    const c = p.send([rec('c')]);
    await tick();
    inner.ack();
    expect(await c).to.have.length(1);
  });

  it('bounds the bytes of one request: large records do not share a request over the bound, one larger than it goes alone', async () => {
    const inner = fakeProducer();
    const p = new BatchingProducer(inner, { maxBatchBytes: 1000 });
    const first = p.send([rec('x')]);
    await tick();
    const big = [p.send([rec('a'.repeat(600))]), p.send([rec('b'.repeat(600))]), p.send([rec('c'.repeat(2000))]), p.send([rec('d')])];
    inner.ack();
    await first;
    for (let i = 0; i < 4; i += 1) {
      // The next request leaves in the macrotask after the ack's: wait past it.
      await tick();
      await tick();
      inner.ack();
    }
    await Promise.all(big);
    // a + b would be 1202 bytes (key included): apart; c alone is over the bound: alone; d after it.
    expect(inner.requests.slice(1).map((r) => r.map((x) => String(x.value).slice(0, 1)))).to.deep.equal([['a'], ['b'], ['c'], ['d']]);
    const small = [p.send([rec('e')]), p.send([rec('f')])];
    await tick();
    inner.ack();
    await Promise.all(small);
    expect(inner.requests.at(-1)?.map((x) => x.value), 'small records still share one').to.deep.equal(['e', 'f']);
  });

  it('a request refused for one record\'s content is sent again caller by caller: only the guilty one fails', async () => {
    const sent: string[][] = [];
    const inner: KafkaProducer = {
      async send(records) {
        sent.push(records.map((r) => String(r.value)));
        if (records.some((r) => String(r.value) === 'huge')) throw new RecordTooLargeError('t', 2_000_000, 1_048_588);
        return records.map((r, i) => ({ topic: r.topic, partition: 0, offset: i }));
      },
      close: () => Promise.resolve(),
    };
    const p = new BatchingProducer(inner);
    const results = await Promise.allSettled([p.send([rec('a')]), p.send([rec('huge')]), p.send([rec('b')])]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(sent).to.deep.equal([['a', 'huge', 'b'], ['a'], ['huge'], ['b']]);
    // A failure that is not the record's (a broker down) still fails the whole request at once.
    const down = new BatchingProducer({ send: () => Promise.reject(new Error('broker down')), close: () => Promise.resolve() });
    const downResults = await Promise.allSettled([down.send([rec('x')]), down.send([rec('y')])]);
    expect(downResults.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
  });
});
