import { expect } from 'chai';
import { retrying, settledWithin, untilAborted, withTimeout } from '../../core/async.ts';
import { AbortedError, TimeoutError, hasCode } from '../../core/errors.ts';

describe('core/async: one implementation of timeouts, aborts and retries', () => {
  it('withTimeout rejects with a TimeoutError and then aborts the work', async () => {
    let seen: AbortSignal | undefined;
    const error = await withTimeout('page run', 20, (signal) => {
      seen = signal;
      return new Promise<never>(() => undefined);
    }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TimeoutError);
    expect((error as TimeoutError).message).to.equal('page run took more than 20 ms');
    expect(seen?.aborted).to.equal(true);
    expect(seen?.reason).to.equal(error);
    expect(await withTimeout('quick', 1000, () => Promise.resolve(42))).to.equal(42);
  });

  it("withTimeout passes the parent's abort to the work", async () => {
    const parent = new AbortController();
    let seen: AbortSignal | undefined;
    const running = withTimeout('x', 10_000, (signal) => {
      seen = signal;
      return new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve('stopped')));
    }, parent.signal);
    parent.abort(new Error('shutdown'));
    expect(await running).to.equal('stopped');
    expect(seen?.aborted).to.equal(true);
  });

  it('untilAborted stops waiting when the signal fires; settledWithin never rejects', async () => {
    const controller = new AbortController();
    const waiting = untilAborted(new Promise<never>(() => undefined), controller.signal, 'executor call').catch((e: unknown) => e);
    controller.abort();
    const error = await waiting;
    expect(error).to.be.instanceOf(AbortedError);
    expect(hasCode(error, 'ERR_ABORTED')).to.equal(true);
    expect(await untilAborted(Promise.resolve('done'), new AbortController().signal)).to.equal('done');
    expect(await settledWithin(Promise.reject(new Error('x')), 1000)).to.equal(true);
    expect(await settledWithin(new Promise(() => undefined), 10)).to.equal(false);
  });

  it('retrying makes at most maxAttempts attempts, only for retryable failures', async () => {
    let calls = 0;
    const flaky = retrying({ maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2 });
    const error = await flaky
      .execute(() => {
        calls += 1;
        throw new Error(`attempt ${calls}`);
      })
      .catch((e: unknown) => e);
    expect(calls).to.equal(3);
    expect((error as Error).message).to.equal('attempt 3');

    calls = 0;
    const picky = retrying({ maxAttempts: 5, initialDelayMs: 1, retryable: (e) => (e as Error).message !== 'permanent' });
    await picky
      .execute(() => {
        calls += 1;
        throw new Error('permanent');
      })
      .catch(() => undefined);
    expect(calls).to.equal(1);

    calls = 0;
    const result = await retrying({ maxAttempts: 4, initialDelayMs: 1 }).execute(() => {
      calls += 1;
      if (calls < 3) throw new Error('not yet');
      return 'ok';
    });
    expect([result, calls]).to.deep.equal(['ok', 3]);
  });
});
