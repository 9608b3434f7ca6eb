/**
 * The dispatcher's retry consumer (DESIGN.md "The dispatcher": "the retry consumer waits until due
 * without blocking other partners or partitions"; docs/dispatcher.md "Retries").
 *
 * A consumer group of its own on tracking.requests.retry. Every record waits on its own (no per-key
 * order: one visitor's request to a partner that is down for an hour never holds back the same
 * visitor's retry to another partner) until its `notBefore`, then goes back to tracking.requests,
 * keyed as before, with its attempts in the request's `retry` marker; its offset is committed once
 * that produce is acknowledged. The dispatcher topology itself never waits for a due time, so a
 * partner that is down costs the others no delivery slot, no buffer and no visitor lane.
 *
 * Waiting records are bounded per instance (`dispatcher.retryBuffer`): past it the retry topic is
 * read no further until some are due (the runner's backpressure), and what was not read yet waits
 * in Kafka, not in memory. Revoked or stopped, a waiting record is given up at once, uncommitted:
 * the partition's next owner reads it again (nothing was produced for it). A record handed back
 * twice (a crash between the produce and the commit) is delivered once: the copy meets its
 * idempotency key in the dispatcher's store.
 */
import type { Registry } from 'prom-client';
import { parseWith } from '../../core/contracts/parse.ts';
import { retryRecordSchema, type RetryMarker, type RequestRecord } from '../../core/contracts/index.ts';
import { untilAborted } from '../../core/async.ts';
import { InvalidInputError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { ConsumedRecord, ProduceRecord } from '../../core/records.ts';
import type { KafkaClient, KafkaProducer } from '../kafka/types.ts';
import { createRunner, type RunnerSettingsInput, type StreamRunner } from '../runner/index.ts';
import type { DeadLetterRouter } from '../streams/index.ts';

export interface RetryConsumerOptions {
  client: KafkaClient;
  /** Its own group (`<dispatcher group>-retry`): its lag is what waits for its time, not a backlog. */
  groupId: string;
  retryTopic: string;
  requestsTopic: string;
  /** Retry records held in memory until due, per instance. */
  buffer: number;
  /** An undecodable retry record goes here (the requests DLQ) and the partition moves on. */
  deadLetters: DeadLetterRouter;
  runner?: RunnerSettingsInput;
  registry?: Registry;
  logger?: Logger;
  clientId?: string;
  now?: () => number;
}

/** setTimeout's longest delay; a longer wait is taken in steps. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * A retry record's due time and the request as tracking.requests carries it back: the retry
 * topic's attempts in its `retry` marker. ERR_INVALID_INPUT naming the field when it is not one.
 */
export function decodeRetry(record: Pick<ConsumedRecord, 'value'>): { request: RequestRecord; due: number } {
  if (record.value === null) throw new InvalidInputError('retry', 'a tombstone is no retry record');
  let value: unknown;
  try {
    value = JSON.parse(record.value.toString('utf8'));
  } catch (error) {
    throw new InvalidInputError('retry', `not JSON: ${(error as Error).message}`);
  }
  const retry = parseWith(retryRecordSchema, 'retry', value);
  const due = Date.parse(retry.notBefore);
  if (Number.isNaN(due)) throw new InvalidInputError('retry.notBefore', `not a date: ${JSON.stringify(retry.notBefore).slice(0, 40)}`);
  const marker: RetryMarker = { attempts: retry.attempts, firstAttemptAt: retry.firstAttemptAt, rounds: retry.rounds };
  const { retry: _older, ...request } = retry.request;
  return { request: { ...request, retry: marker }, due };
}

export async function startRetryConsumer(options: RetryConsumerOptions): Promise<StreamRunner> {
  const now = options.now ?? Date.now;
  const producer: KafkaProducer = await options.client.producer(options.clientId === undefined ? {} : { clientId: options.clientId });
  const handler = async (record: ConsumedRecord, ctx: { signal: AbortSignal }): Promise<ProduceRecord[]> => {
    const { request, due } = decodeRetry(record);
    for (let wait = due - now(); wait > 0; wait = due - now()) await sleep(Math.min(wait, MAX_TIMER_MS), ctx.signal);
    return [{ topic: options.requestsTopic, key: record.key, value: JSON.stringify(request), ...(Object.keys(record.headers).length === 0 ? {} : { headers: record.headers }) }];
  };
  const runner = createRunner({
    ...options.runner,
    // Waiting costs a timer, not CPU: as many may wait as the buffer holds.
    concurrency: options.buffer,
    maxBuffered: options.buffer,
    resumeBelow: Math.floor(options.buffer * 0.9),
    // Waiting records are given up at once on a revocation (the next owner reads them again).
    revokeTimeoutMs: 0,
    perKeyOrder: false,
    client: options.client,
    groupId: options.groupId,
    topic: options.retryTopic,
    requirements: { exist: [options.retryTopic, options.requestsTopic], copartitionGroups: [], compacted: [] },
    producer,
    handler,
    onError: async (error, record) => {
      const letter = options.deadLetters(error, record);
      if (letter === undefined) throw error;
      await producer.send([letter]);
      options.logger?.warn({ err: error, topic: record.topic, partition: record.partition, offset: record.offset }, 'undecodable retry record dead-lettered');
    },
    ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    ...(options.registry === undefined ? {} : { registry: options.registry }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  try {
    await runner.start();
  } catch (error) {
    await producer.close().catch(() => undefined);
    throw error;
  }
  runner.closed.finally(() => producer.close()).catch(() => undefined);
  return runner;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return untilAborted(done, signal, 'retry wait').finally(() => clearTimeout(timer));
}
