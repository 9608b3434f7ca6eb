/**
 * The synthetic visitor document the navigation is fulfilled with (the site is never fetched):
 * the bootstrap first (inject/bootstrap.js, called with the visit's BootConfig), then each
 * consented partner's html in its own section.
 */
import type { EmulationParams } from '../emulation.ts';
import { BOOTSTRAP_FUNCTION } from '../in-page.ts';
import type { BootConfig } from '../inject/state.js';
import type { Jar, PageViewEvent, PartnerConfig } from '../schemas.ts';

export function jsonForScript(value: unknown): string {
  // Inside <script>, "</script>" or "<!--" in a string would end or confuse the element.
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface BootInput {
  runId: string;
  event: PageViewEvent;
  emulation: EmulationParams;
  active: readonly PartnerConfig[];
  jar: Jar;
  barrierUrl: string;
  idleRealMs: number;
  inPageCapture: boolean;
  trustedClose: boolean;
  cdpTime: boolean;
}

/** What the bootstrap needs to know about the visit. */
export function bootConfig(i: BootInput): BootConfig {
  const { event, emulation: emu } = i;
  const d = event.device;
  return {
    runId: i.runId,
    startMs: Date.parse(event.timestamp),
    data: event.data,
    referrer: event.page.referrer ?? '',
    screen: { width: d.screen.width, height: d.screen.height, colorDepth: d.screen.colorDepth },
    viewport: { width: d.viewport.width, height: d.viewport.height },
    mobile: emu.metrics.mobile,
    languages: emu.languages,
    language: emu.languages[0],
    noUserAgentData: !emu.userAgentData,
    hardwareConcurrency: emu.hardwareConcurrency,
    deviceMemory: emu.deviceMemory,
    localStorage: i.jar.localStorage[new URL(event.page.url).origin] ?? {},
    policy: i.active.flatMap((p) => [
      ...p.allowHosts.map((entry) => ({ partner: p.id, entry, kind: 'allow' as const })),
      ...p.captureHosts.map((entry) => ({ partner: p.id, entry, kind: 'capture' as const })),
    ]),
    inPageCapture: i.inPageCapture,
    trustedClose: i.trustedClose,
    responsePrefixes: i.active.flatMap((p) => p.responses.map((r) => r.url)),
    realTimerMaxMs: 20,
    pendingExpiryMs: 2000,
    idleRealMs: i.idleRealMs,
    hideQuietMs: 50,
    barrierUrl: i.barrierUrl,
    cdpTime: i.cdpTime,
  };
}

/**
 * The document's html. `bootstrapInjected`: the tab defines the bootstrap on each new document
 * (in-page.ts BOOTSTRAP_INJECTION), the document only calls it; else it is inlined.
 */
export function synthesizeDocument(
  event: PageViewEvent,
  active: readonly PartnerConfig[],
  config: BootConfig,
  bootstrapInjected = false,
): string {
  const lang = escapeHtml(event.device.language);
  const title = escapeHtml(event.page.title ?? '');
  let body = '';
  for (const p of active) {
    const id = jsonForScript(p.id);
    body += `<script>__tagstream.begin(${id})</script>\n${p.html}\n<script>__tagstream.end(${id})</script>\n`;
  }
  return (
    `<!DOCTYPE html><html lang="${lang}"><head><meta charset="utf-8">` +
    // Sites declare a device-width viewport; without it a mobile visitor's innerWidth would be 980.
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>` +
    // No favicon request (new headless asks for one): it is the browser's, not a tag's.
    `<link rel="icon" href="data:,">` +
    (bootstrapInjected
      ? `<script>(function(w){var b=w.__tagstream_boot;delete w.__tagstream_boot;b(${jsonForScript(config)})})(window)</script>`
      : `<script>${BOOTSTRAP_FUNCTION}(${jsonForScript(config)})</script>`) +
    `</head><body>\n${body}</body></html>`
  );
}
