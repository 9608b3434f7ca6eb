/**
 * The console (DESIGN.md "The console"; docs/console.md): a bounded buffer fed by the processor's
 * and the dispatcher's observers, and its page on its own loopback listener.
 *
 *   const c = await startConsole({ settings: settings.console, partners, logger });
 *   createProcessorRole({ ..., observer: c.observers.execution });
 *   createDispatcherRole({ ..., observer: c.observers.delivery });
 *   c.url   // http://127.0.0.1:9465
 *   await c.close();
 */
import type { PartnerConfig } from '../../core/contracts/index.ts';
import type { Logger } from '../../core/log.ts';
import type { DeliveryObserver, ExecutionObserver } from '../roles/observers.ts';
import { ConsoleBuffer } from './buffer.ts';
import { startConsoleServer, type ConsoleReplay } from './server.ts';
import type { ConsoleSettings } from './settings.ts';

export { ConsoleBuffer, idempotencyKeys } from './buffer.ts';
export type { EventSummary, EventTrace, RequestView, DispatchView, CountersView, HostView, PartnerCounts } from './buffer.ts';
export { startConsoleServer, type ConsoleReplay, type ConsoleServer } from './server.ts';
export { ConsoleSettingsSchema, consoleEnabled, type ConsoleSettings } from './settings.ts';
export { decodeBody, decodeQuery, decodeRequest, decodeValue, type DecodedBody, type DecodedRequest } from './decode.ts';
export { diffJars, type JarDiff } from './jar-diff.ts';

export interface ConsoleOptions {
  settings: Pick<ConsoleSettings, 'host' | 'port' | 'bufferSize' | 'counterMinutes'>;
  partners: readonly PartnerConfig[];
  /** The replay action; built from the buffer's event when given (see runtime/console/replay.ts). */
  replay?: (buffer: ConsoleBuffer) => ConsoleReplay;
  links?: { label: string; url: string }[];
  logger?: Logger;
}

export interface RunningConsole {
  readonly buffer: ConsoleBuffer;
  readonly observers: { execution: ExecutionObserver; delivery: DeliveryObserver };
  readonly url: string;
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const buffer = new ConsoleBuffer({ size: options.settings.bufferSize, minutes: options.settings.counterMinutes, partners: options.partners });
  const server = await startConsoleServer({
    buffer,
    host: options.settings.host,
    port: options.settings.port,
    ...(options.replay === undefined ? {} : { replay: options.replay(buffer) }),
    ...(options.links === undefined ? {} : { links: options.links }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  return {
    buffer,
    observers: { execution: (r) => buffer.recordExecution(r), delivery: (req, o) => buffer.recordDelivery(req, o) },
    url: server.url,
    address: server.address,
    close: () => server.close(),
  };
}
