/**
 * The end-to-end suite's partners: three tags that keep a visitor id as real trackers do (the
 * pattern of test/executor/fixtures/tags/cookie-id.js and ls-id.js, each on its own collection
 * host and with its own transport), and one HTTPS server on 127.0.0.1 that receives what the
 * dispatcher delivers for all three hosts (a certificate for their names, DISPATCHER_RESOLVE points
 * the hosts at it). Each host can be switched to failing answers, to stand for a partner outage.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PartnerConfigInput } from '../../core/contracts/index.ts';
import { makeCert, type TestCert } from '../dispatcher/helpers.ts';

export const PARTNERS = [
  { id: 'pa', host: 'collect.pa.example', consent: 'analytics' },
  { id: 'pb', host: 'collect.pb.example', consent: 'analytics' },
  { id: 'pc', host: 'collect.pc.example', consent: 'advertising' },
] as const;

export type PartnerId = (typeof PARTNERS)[number]['id'];

/** What each partner's tag reports about the page: its id for the visitor, and the visitor's context. */
function context(): string {
  return "'&u='+encodeURIComponent(location.href)+'&lang='+encodeURIComponent(navigator.language)+'&tz='+encodeURIComponent(Intl.DateTimeFormat().resolvedOptions().timeZone)";
}

/** pa: an id in a first-party cookie, an image pixel (cookie-id.js). */
const PA = `<script>(function(){var m=document.cookie.match(/(?:^|; )_pa=([^;]+)/);var id=m?m[1]:'a'+Math.random().toString(36).slice(2,12);
document.cookie='_pa='+id+'; path=/; max-age=63072000; SameSite=Lax';
new Image().src='https://collect.pa.example/hit?id='+id+'&new='+(m?0:1)+${context()};})();</script>`;

/** pb: an id in localStorage, a fetch POST with a JSON body (ls-id.js). */
const PB = `<script>(function(){var id=localStorage.getItem('pb_id');var fresh=!id;if(!id){id='b'+Math.random().toString(36).slice(2,12);localStorage.setItem('pb_id',id);}
fetch('https://collect.pb.example/hit?id='+id+'&new='+(fresh?1:0)+${context()},{method:'POST',body:JSON.stringify({id:id,title:document.title})});})();</script>`;

/** pc: an advertising partner, cookie id, sendBeacon. */
const PC = `<script>(function(){var m=document.cookie.match(/(?:^|; )_pc=([^;]+)/);var id=m?m[1]:'c'+Math.random().toString(36).slice(2,12);
document.cookie='_pc='+id+'; path=/; max-age=63072000; SameSite=Lax';
navigator.sendBeacon('https://collect.pc.example/hit?id='+id+'&new='+(m?0:1)+${context()},'{"ev":"pv"}');})();</script>`;

const HTML: Record<PartnerId, string> = { pa: PA, pb: PB, pc: PC };

export function partnerConfigs(): PartnerConfigInput[] {
  return PARTNERS.map((p) => ({ id: p.id, consent: p.consent, html: HTML[p.id], captureHosts: [p.host], timeoutMs: 3000 }));
}

export interface Hit {
  partner: PartnerId;
  /** The visitor id the partner's tag sent. */
  id: string;
  fresh: boolean;
  /** The page URL the tag saw (location.href). */
  url: string;
  lang: string;
  tz: string;
  userAgent: string;
  forwardedFor: string;
  status: number;
  at: number;
}

/** status for this hit; 2xx = delivered. */
export type Answer = (hit: Omit<Hit, 'status' | 'at'>) => number;

export interface PartnerInbox {
  readonly port: number;
  readonly cert: TestCert;
  readonly hits: Hit[];
  /** DISPATCHER_RESOLVE value for the three hosts. */
  readonly resolve: string;
  answer: Answer;
  delivered(): Hit[];
  close(): Promise<void>;
}

export async function startInbox(): Promise<PartnerInbox> {
  const cert = makeCert(PARTNERS.map((p) => p.host));
  const hits: Hit[] = [];
  const state: { answer: Answer } = { answer: () => 204 };
  const server: Server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const partner = PARTNERS.find((p) => p.host === host)?.id;
      const q = new URL(req.url ?? '/', 'https://x').searchParams;
      if (partner === undefined) {
        res.writeHead(404).end();
        return;
      }
      const seen = {
        partner,
        id: q.get('id') ?? '',
        fresh: q.get('new') === '1',
        url: q.get('u') ?? '',
        lang: q.get('lang') ?? '',
        tz: q.get('tz') ?? '',
        userAgent: String(req.headers['user-agent'] ?? ''),
        forwardedFor: String(req.headers['x-forwarded-for'] ?? ''),
      };
      const status = state.answer(seen);
      hits.push({ ...seen, status, at: Date.now() });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    cert,
    hits,
    resolve: PARTNERS.map((p) => `${p.host}:443=127.0.0.1:${port}`).join(','),
    get answer() {
      return state.answer;
    },
    set answer(a: Answer) {
      state.answer = a;
    },
    delivered: () => hits.filter((h) => h.status >= 200 && h.status < 300),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
