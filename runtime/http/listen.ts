/**
 * A node:http server listening on one host and port, for the listeners besides the process's
 * endpoint (the console, the demo shop and inbox): a port in use is a clear error naming the
 * setting, and close() does not wait for keep-alive connections to time out.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListenError } from '../../core/errors.ts';

export interface Listening {
  readonly address: { host: string; port: number };
  /** `http://host:port` (IPv6 hosts in brackets). */
  readonly url: string;
  close(): Promise<void>;
}

export async function listen(server: Server, host: string, port: number, what: string, setting: string): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ListenError(what, host, port, err.code ?? err.message, setting)));
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  let closing: Promise<void> | undefined;
  return {
    address: { host: bound.address, port: bound.port },
    url: `http://${shown}:${bound.port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
