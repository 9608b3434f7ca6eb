/**
 * The executor's input and output contracts live once in core/contracts (DESIGN.md "Contracts");
 * this module names the ones the executor uses, for its own modules and its public index.
 */
export {
  userAgentDataSchema,
  deviceSchema,
  eventSchema,
  responseSchema,
  partnerSchema,
  partnersSchema,
  jarCookieSchema,
  jarSchema,
  DEFAULT_TIMEOUT_MS,
  parseEvent,
  parsePartners,
  parseJar,
  consentGranted,
  type PageViewEvent,
  type PageViewEventInput,
  type PartnerConfig,
  type PartnerConfigInput,
  type PartnerResponse,
  type Jar,
  type JarInput,
  type JarCookie,
  type UserAgentData,
  type Transport,
  type CapturedRequest,
  type TrackerStatus,
  type TrackerOutcome,
  type ExecuteResult,
} from '../../core/contracts/index.ts';
