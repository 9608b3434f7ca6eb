/**
 * One Chromium process of the pool: the flags it runs with and how it is launched.
 */
import puppeteer, { type Browser } from 'puppeteer-core';

/** Chromium refuses to start its sandbox as root (the CI and development machines here). */
export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export const HEADLESS_SHELL_PATH = '/usr/lib/chromium/chromium-headless-shell';
export const CHROMIUM_PATH = '/usr/bin/chromium';

// Flags every browser runs with. The fixed set comes from the operator's brief (closed network,
// no background traffic); the rest from the prototype findings in docs/executor.md.
export function chromiumArgs(opts: { headless: 'shell' | 'new'; sandbox?: boolean }): string[] {
  const args = [
    // The sandbox stays on where Chromium allows it: partner JavaScript is untrusted.
    ...(opts.sandbox ?? !runningAsRoot() ? [] : ['--no-sandbox']),
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    // Hidden WebUI renderers per profile/context cost ~160 MB each and up to 2.8x CPU per view.
    // LocalNetworkAccessChecks: every request is answered by us; our own policy decides.
    // RenderDocument: with it every navigation of a pooled tab builds a new RenderFrame (and
    // WebView) in the renderer, swaps it in, detaches the old one and re-attaches DevTools to it;
    // without it the frame is reused and each visit still gets a new document and window.
    // Measured (bench/executor/trace.ts): renderer main thread 29 -> 24 ms, browser main thread
    // 17 -> 13 ms per view.
    '--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,LocalNetworkAccessChecks,Translate,MediaRouter,OptimizationHints,BackForwardCache,AutofillServerCommunication,RenderDocument',
    // No preload scanner: it fetched each parser-inserted partner script in no-cors mode, then
    // the bootstrap's CORS mode made the script fetch it again, and the two entries kept evicting
    // each other from the renderer's memory cache: two intercepted requests per script per view
    // instead of none (small-tag workload: 8 -> 4 Fetch pauses per view; CPU per view 55-58 ->
    // 41-47 ms in alternating runs, network service 5 -> 3.4 ms). The tags see no difference.
    '--blink-settings=doHtmlPreloadScanning=false',
    // V8 tiers up hot partner code to Maglev and Turbofan on background threads; in a page that
    // lives for one visit (each visit a new context, so new feedback) that work is mostly wasted:
    // up to Sparkplug only. Measured in alternating runs (docs/bench-executor.md "Levers"): three
    // real SDKs 113 -> 94 ms CPU per view, renderer 69 -> 54 ms.
    '--js-flags=--max-opt=1',
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    '--disable-dev-shm-usage',
    '--disable-extensions',
    '--disable-default-apps',
    '--disable-breakpad',
    '--mute-audio',
    '--password-store=basic',
    // Defence in depth: whatever escapes interception (workers, preconnect, popups, WebRTC)
    // finds no proxy, no DNS and no UDP.
    '--proxy-server=http://127.0.0.1:9',
    '--proxy-bypass-list=<-loopback>',
    '--host-resolver-rules=MAP * ~NOTFOUND',
    '--force-webrtc-ip-handling-policy=disable_non_proxied_udp',
  ];
  // New headless with 2+ pages kept killing and restarting a spare renderer on every view.
  if (opts.headless === 'new') args.push('--disable-site-isolation-trials');
  return args;
}

export interface LaunchOptions {
  executablePath: string;
  headless: 'shell' | 'new';
  sandbox: boolean;
  extraArgs: readonly string[];
}

/** Starts one Chromium over a pipe; popups it opens are closed at once, downloads denied. */
export async function launchChromium(opts: LaunchOptions): Promise<Browser> {
  const browser = await puppeteer.launch({
    executablePath: opts.executablePath,
    headless: opts.headless === 'shell' ? 'shell' : true,
    pipe: true,
    args: [...chromiumArgs({ headless: opts.headless, sandbox: opts.sandbox }), ...opts.extraArgs],
    // navigator.webdriver is the visitor's (false); the automation banner flag is not needed.
    ignoreDefaultArgs: ['--enable-automation'],
    defaultViewport: null,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    protocolTimeout: 60_000,
  });
  // Popups (target=_blank links, window.open through a frame) are closed at once.
  browser.on('targetcreated', (t) => {
    if (t.type() === 'page' && t.opener()) {
      t.createCDPSession()
        .then((s) => s.send('Page.close'))
        .catch(() => undefined);
    }
  });
  return browser;
}
