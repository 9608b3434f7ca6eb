/**
 * Browser executor (docs/executor.md): run partners' unmodified tags in headless Chromium as the visitor,
 * capture every request they try to send and the jar they leave.
 *
 *   const executor = await createExecutor({ browsers: 1, pagesPerBrowser: 2 });
 *   const { requests, jar, trackers } = await executor.execute(event, jar | null, partners);
 *   await executor.close();
 */
export { Executor, createExecutor } from './pool.ts';
export type { ExecutorOptions, PoolStats, ExecutorHealth } from './pool.ts';
export { chromiumArgs, HEADLESS_SHELL_PATH, CHROMIUM_PATH } from './browser.ts';
export { ScriptCache, UpstreamFetchError } from './script-cache.ts';
export type { ScriptCacheOptions, CachedResponse, ScriptVersion } from './script-cache.ts';
export {
  EgressDeniedError,
  isPrivateAddress,
  isLoopbackName,
  checkEgressUrl,
  guardedLookup,
  matchPolicy,
  entryMatch,
} from './egress.ts';
export type { EgressOptions, PolicyEntry, PolicyKind } from './egress.ts';
export { executorMetrics } from './metrics.ts';
export type { ExecutorMetrics } from './metrics.ts';
export { BrowserCrashedError, ExecutorFailedError, ExecutorUnavailableError } from '../../core/errors.ts';
export { deriveUserAgentData, acceptLanguage, emulationFor } from './emulation.ts';
export {
  parseEvent,
  parsePartners,
  parseJar,
  consentGranted,
  eventSchema,
  partnerSchema,
  partnersSchema,
  jarSchema,
  DEFAULT_TIMEOUT_MS,
} from './schemas.ts';
export type {
  PageViewEvent,
  PageViewEventInput,
  PartnerConfig,
  PartnerConfigInput,
  Jar,
  JarInput,
  JarCookie,
  CapturedRequest,
  Transport,
  TrackerOutcome,
  TrackerStatus,
  ExecuteResult,
} from './schemas.ts';
