/**
 * The demo partners (`run --demo`): three real tracker SDKs from npm and one classic image pixel,
 * each as a site owner would paste it, with its script loaded from the partner inbox (allowHosts)
 * and its collection endpoint on the inbox too (captureHosts). The URLs carry the inbox's port,
 * so the list is made at start (examples/partners.demo.json is what it looks like on the defaults).
 */
import type { PartnerConfigInput } from '../../core/contracts/index.ts';

/** The demo partners for an inbox at `inbox` (`http://127.0.0.1:8082`). */
export function demoPartners(inbox: string): PartnerConfigInput[] {
  const sdk = (name: string): string => `${inbox}/sdk/${name}/`;
  const collect = (name: string): string => `${inbox}/c/${name}/`;
  return [
    {
      id: 'snowplow',
      consent: 'analytics',
      // The UMD bundle of @snowplow/browser-tracker defines window.snowplowBrowserTracking; the tracker
      // appends its path (/com.snowplowanalytics.snowplow/tp2) to the endpoint.
      html:
        `<script src="${sdk('snowplow')}sp.js"></script>` +
        `<script>(function (sp) { sp.newTracker('sp', '${inbox}/c/snowplow', { appId: 'demo-shop', platform: 'web', eventMethod: 'post', cookieSecure: false, stateStorageStrategy: 'cookieAndLocalStorage', contexts: { webPage: true } }); sp.trackPageView(); })(window.snowplowBrowserTracking);</script>`,
      allowHosts: [sdk('snowplow')],
      captureHosts: [collect('snowplow')],
      timeoutMs: 3000,
    },
    {
      id: 'posthog',
      consent: 'analytics',
      // PostHog's own snippet, with the bundle's URL and api_host pointed at the inbox.
      html:
        '<script>!function(t,e){var o,n,p,r;e.__SV||(window.posthog=e,e._i=[],e.init=function(i,s,a){function g(t,e){var o=e.split(".");2==o.length&&(t=t[o[0]],e=o[1]),t[e]=function(){t.push([e].concat(Array.prototype.slice.call(arguments,0)))}}' +
        `(p=t.createElement("script")).type="text/javascript",p.crossOrigin="anonymous",p.async=!0,p.src="${sdk('posthog')}array.js",` +
        '(r=t.getElementsByTagName("script")[0]).parentNode.insertBefore(p,r);var u=e;for(void 0!==a?u=e[a]=[]:a="posthog",u.people=u.people||[],u.toString=function(t){var e="posthog";return"posthog"!==a&&(e+="."+a),t||(e+=" (stub)"),e},u.people.toString=function(){return u.toString(1)+".people (stub)"},o="capture identify alias people.set people.set_once set_config register register_once unregister opt_out_capturing has_opted_out_capturing opt_in_capturing reset isFeatureEnabled onFeatureFlags getFeatureFlag getFeatureFlagPayload reloadFeatureFlags group".split(" "),n=0;n<o.length;n++)g(u,o[n]);e._i.push([i,s,a])},e.__SV=1)}(document,window.posthog||[]);\n' +
        `posthog.init('phc_demo', { api_host: '${inbox}/c/posthog', persistence: 'localStorage+cookie', autocapture: false, disable_session_recording: true });</script>`,
      allowHosts: [sdk('posthog')],
      captureHosts: [collect('posthog')],
      timeoutMs: 3000,
    },
    {
      id: 'plausible',
      consent: 'analytics',
      // @plausible-analytics/tracker is an ES module; captureOnLocalhost because the shop is on 127.0.0.1.
      html: `<script type="module">import { init } from '${sdk('plausible')}plausible.js'; init({ domain: 'shop.demo', endpoint: '${collect('plausible')}api/event', captureOnLocalhost: true, logging: false });</script>`,
      allowHosts: [sdk('plausible')],
      captureHosts: [collect('plausible')],
      timeoutMs: 3000,
    },
    {
      id: 'pixel',
      consent: 'advertising',
      // A classic ad pixel: a first-party cookie id and a 1×1 image with the page in its query.
      html:
        "<script>(function () { var m = document.cookie.match(/(?:^|; )_px_uid=([^;]+)/); var id = m ? m[1] : 'px-' + Math.random().toString(36).slice(2, 12);" +
        " document.cookie = '_px_uid=' + id + '; path=/; max-age=63072000; SameSite=Lax';" +
        ` new Image(1, 1).src = '${collect('pixel')}tr?ev=PageView&uid=' + id + '&dl=' + encodeURIComponent(location.href) + '&dt=' + encodeURIComponent(document.title) + '&rl=' + encodeURIComponent(document.referrer) + '&ts=' + Date.now(); })();</script>`,
      captureHosts: [collect('pixel')],
      timeoutMs: 3000,
    },
  ];
}
