/** Client options with their defaults applied, shared by the real-broker adapters. */
import { componentLogger, type Logger } from '../../core/log.ts';
import type { KafkaClientOptions } from './types.ts';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

export interface ResolvedOptions {
  brokers: readonly string[];
  clientId: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  logger: Logger;
}

export function resolveOptions(options: KafkaClientOptions): ResolvedOptions {
  return {
    brokers: [...options.brokers],
    clientId: options.clientId ?? 'tagstream',
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    logger: componentLogger(options.logger, 'kafka'),
  };
}
