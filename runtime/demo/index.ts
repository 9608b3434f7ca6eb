/**
 * The demo of `npm start` (`run --demo`): the partner inbox (the partners' CDN and endpoints),
 * the demo partners pointed at it, and the shop. Started before the roles, since the partners'
 * URLs carry the inbox's port and the collector must allow the shop's origin.
 *
 *   const demo = await startDemo({ settings: settings.demo, collectorUrl: () => 'http://127.0.0.1:8080' });
 *   demo.partners      // PartnerConfig[] for the processor and the dispatcher
 *   demo.shop.url, demo.inbox.url
 *   await demo.close();
 */
import { parsePartners, type PartnerConfig } from '../../core/contracts/index.ts';
import type { Listening } from '../http/listen.ts';
import { demoPartners } from './partners.ts';
import { startInbox, type Inbox } from './inbox.ts';
import { loadSdks } from './sdks.ts';
import { startShop } from './shop.ts';
import type { DemoSettings } from './settings.ts';

export { DemoSettingsSchema, type DemoSettings } from './settings.ts';
export { demoPartners } from './partners.ts';
export { decodeInbox, type InboxEvent } from './inbox-decode.ts';
export type { Inbox, InboxEntry } from './inbox.ts';

export interface DemoOptions {
  settings: Pick<DemoSettings, 'host' | 'shopPort' | 'inboxPort'>;
  collectorUrl: () => string;
  /** Links shown in the inbox's header (the console's, the shop's). */
  links?: () => { label: string; url: string }[];
}

export interface RunningDemo {
  readonly partners: PartnerConfig[];
  readonly shop: Listening;
  readonly inbox: Inbox;
  /** The shop's origins a browser may send (for the collector's CORS). */
  readonly shopOrigins: string[];
  close(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const sdks = loadSdks();
  const host = options.settings.host;
  const inbox = await startInbox({ host, port: options.settings.inboxPort, sdks, partners: ['snowplow', 'posthog', 'plausible', 'pixel'], ...(options.links === undefined ? {} : { links: options.links }) });
  try {
    const shop = await startShop({ host, port: options.settings.shopPort, collectorUrl: options.collectorUrl });
    // Partners reach the inbox on loopback whatever interface it listens on.
    const inboxUrl = `http://${reachable(host)}:${inbox.address.port}`;
    const partners = parsePartners(demoPartners(inboxUrl), 'demo partners');
    const shopUrl = `http://${reachable(host)}:${shop.address.port}`;
    return {
      partners,
      shop: { ...shop, url: shopUrl },
      inbox: Object.assign(inbox, { url: inboxUrl }),
      shopOrigins: [...new Set([shopUrl, `http://127.0.0.1:${shop.address.port}`, `http://localhost:${shop.address.port}`])],
      async close() {
        await Promise.allSettled([shop.close(), inbox.close()]);
      },
    };
  } catch (error) {
    await inbox.close();
    throw error;
  }
}

function reachable(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
}
