/** Debian's Chromium for the collector's browser tests (the flags the brief prescribes). */
import puppeteer, { type Browser } from 'puppeteer-core';

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

export async function launchTestBrowser(extraArgs: string[] = []): Promise<Browser> {
  return puppeteer.launch({
    executablePath: '/usr/lib/chromium/chromium-headless-shell',
    headless: 'shell',
    pipe: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
}

/** Polls `check` every 100 ms until it returns a value, at most `ms`. */
export async function eventually<T>(ms: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}
