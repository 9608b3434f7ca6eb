/**
 * The visitor's device as CDP emulation parameters. Client hints must match the user agent and
 * never say "Headless": absent `event.device.userAgentData`, they are derived from the UA string
 * the way Chrome would report them; a non-Chromium UA (Firefox, Safari) gets none at all.
 */
import type { Protocol } from 'puppeteer-core';
import type { PageViewEvent, UserAgentData } from './schemas.ts';

export interface EmulationParams {
  userAgent: Protocol.Emulation.SetUserAgentOverrideRequest;
  timezoneId: string;
  locale: string;
  metrics: Protocol.Emulation.SetDeviceMetricsOverrideRequest;
  /** false when the UA is not Chromium-based: navigator.userAgentData must then be absent */
  userAgentData: boolean;
  languages: string[];
  hardwareConcurrency: number;
  /** null: the browser has no navigator.deviceMemory (Firefox, Safari) */
  deviceMemory: number | null;
}

/** "fr-FR,fr;q=0.9,en;q=0.8" as Chrome builds it from the language list. */
export function acceptLanguage(languages: readonly string[]): string {
  return languages
    .map((l, i) => {
      if (i === 0) return l;
      const q = Math.max(0.1, 1 - i * 0.1);
      return `${l};q=${q.toFixed(1).replace(/\.0$/, '')}`;
    })
    .join(',');
}

function uaPlatform(ua: string): { platform: string; platformVersion: string; mobile: boolean; architecture: string; model: string } {
  let m: RegExpExecArray | null;
  if ((m = /Android (\d+(?:\.\d+)*)(?:; ([^;)]+))?/.exec(ua))) {
    const model = m[2] && m[2] !== 'K' ? m[2].trim() : '';
    return { platform: 'Android', platformVersion: m[1] ?? '', mobile: /Mobile/.test(ua), architecture: '', model };
  }
  if (/Windows NT/.test(ua)) return { platform: 'Windows', platformVersion: '10.0.0', mobile: false, architecture: 'x86', model: '' };
  if ((m = /Mac OS X (\d+(?:[._]\d+)*)/.exec(ua)))
    return { platform: 'macOS', platformVersion: (m[1] ?? '').replace(/_/g, '.'), mobile: false, architecture: 'arm', model: '' };
  if (/CrOS/.test(ua)) return { platform: 'Chrome OS', platformVersion: '', mobile: false, architecture: 'x86', model: '' };
  if (/Linux/.test(ua)) return { platform: 'Linux', platformVersion: '', mobile: false, architecture: 'x86', model: '' };
  return { platform: '', platformVersion: '', mobile: /Mobile/.test(ua), architecture: '', model: '' };
}

/** Client hints Chrome would send for this UA, or null for a browser without UA-CH. */
export function deriveUserAgentData(ua: string): UserAgentData | null {
  const chrome = /(?:Chrome|CriOS)\/(\d+)(\.[\d.]+)?/.exec(ua);
  if (!chrome || /Firefox\/|FxiOS/.test(ua) || /CriOS/.test(ua)) return null; // iOS browsers are WebKit: no UA-CH
  const major = chrome[1] ?? '0';
  const full = major + (chrome[2] ?? '.0.0.0');
  const edge = /Edg\/(\d+)(\.[\d.]+)?/.exec(ua);
  const opera = /OPR\/(\d+)(\.[\d.]+)?/.exec(ua);
  const brand = edge ? 'Microsoft Edge' : opera ? 'Opera' : 'Google Chrome';
  const brandMajor = edge?.[1] ?? opera?.[1] ?? major;
  const brandFull = edge ? brandMajor + (edge[2] ?? '.0.0.0') : opera ? brandMajor + (opera[2] ?? '.0.0.0') : full;
  const p = uaPlatform(ua);
  return {
    brands: [
      { brand: 'Not)A;Brand', version: '8' },
      { brand: 'Chromium', version: major },
      { brand, version: brandMajor },
    ],
    fullVersionList: [
      { brand: 'Not)A;Brand', version: '8.0.0.0' },
      { brand: 'Chromium', version: full },
      { brand, version: brandFull },
    ],
    mobile: p.mobile,
    platform: p.platform,
    platformVersion: p.platformVersion,
    architecture: p.architecture,
    model: p.model,
    bitness: p.architecture === '' ? '' : '64',
  };
}

export function emulationFor(event: PageViewEvent): EmulationParams {
  const d = event.device;
  const languages = d.languages && d.languages.length > 0 ? d.languages : [d.language];
  const uad = d.userAgentData ?? deriveUserAgentData(d.userAgent);
  const userAgent: Protocol.Emulation.SetUserAgentOverrideRequest = {
    userAgent: d.userAgent,
    // Chromium adds the q-values itself.
    acceptLanguage: languages.join(','),
    platform: d.platform,
  };
  if (uad) {
    const fallback = deriveUserAgentData(d.userAgent);
    const brands = uad.brands ?? fallback?.brands ?? [];
    userAgent.userAgentMetadata = {
      brands,
      fullVersionList: uad.fullVersionList ?? fallback?.fullVersionList ?? brands,
      platform: uad.platform ?? fallback?.platform ?? '',
      platformVersion: uad.platformVersion ?? fallback?.platformVersion ?? '',
      architecture: uad.architecture ?? fallback?.architecture ?? '',
      model: uad.model ?? fallback?.model ?? '',
      mobile: uad.mobile ?? fallback?.mobile ?? false,
      bitness: uad.bitness ?? fallback?.bitness ?? '',
    };
  }
  const mobile = uad?.mobile ?? /Mobi|Android|iPhone|iPad/.test(d.userAgent);
  return {
    userAgent,
    timezoneId: d.timezone,
    locale: d.language,
    metrics: {
      width: d.viewport.width,
      height: d.viewport.height,
      deviceScaleFactor: d.screen.pixelRatio,
      mobile,
      screenWidth: d.screen.width,
      screenHeight: d.screen.height,
    },
    userAgentData: uad !== null,
    languages,
    // Never the server's: the collector's values, else a common device of the kind (8 logical
    // cores; Chrome reports at most 8 GB, typical phones 4). Only Chromium has deviceMemory.
    hardwareConcurrency: d.hardwareConcurrency ?? 8,
    deviceMemory: /Firefox\/|FxiOS/.test(d.userAgent) || (!/Chrome\/|CriOS/.test(d.userAgent) && /Safari\//.test(d.userAgent))
      ? null
      : (d.deviceMemory ?? (mobile ? 4 : 8)),
  };
}
