/**
 * The inbox's page: per partner, the page views it received (newest first) with the visitor id
 * it keys them by (one colour per id), the visitors it has seen, and each decoded request. Every
 * value is escaped: it came from a tag running a visitor's page.
 */
import { esc, hue } from './html.ts';
import type { InboxEntry } from './inbox.ts';
import type { Sdk } from './sdks.ts';

export interface InboxPageInput {
  entries: readonly InboxEntry[];
  seq: number;
  partners: readonly string[];
  sdks: readonly Sdk[];
  links: { label: string; url: string }[];
}

const ROWS = 40;

export function renderInbox(input: InboxPageInput): string {
  const sections = input.partners.map((partner) => section(partner, input.entries.filter((e) => e.partner === partner), input.sdks.find((s) => s.partner === partner)));
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partner inbox — tagstream demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{margin:0;font:13px/1.45 system-ui,sans-serif;color:#1d2733;background:#f6f7f9}
header{display:flex;gap:20px;align-items:baseline;padding:10px 18px;background:#3b2a58;color:#fff}
header h1{margin:0;font-size:17px} header a{color:#d8c8ff;margin-right:12px} header .note{margin-left:auto;opacity:.75}
main{padding:12px 18px;display:grid;grid-template-columns:repeat(auto-fit,minmax(620px,1fr));gap:12px}
section{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:10px 12px;min-width:0}
h2{font-size:15px;margin:0 0 4px} .muted{color:#6b7785}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #e3e6ea;vertical-align:top}
th{color:#6b7785;font-weight:600;font-size:12px} td.page{word-break:break-word;min-width:160px} td.req{max-width:190px;overflow:hidden} td.req summary{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.id{font:12px ui-monospace,monospace;padding:0 5px;border-radius:4px;white-space:nowrap}
.visitors{margin:6px 0 8px} .visitors span{margin-right:10px}
pre{white-space:pre-wrap;word-break:break-all;background:#f3f5f8;padding:6px;border-radius:4px;max-height:260px;overflow:auto;font:11px ui-monospace,monospace}
details summary{cursor:pointer;color:#2456b3}
</style></head><body>
<header><h1>Partner inbox</h1><nav>${input.links.map((l) => `<a href="${esc(l.url)}">${esc(l.label)}</a>`).join('')}</nav>
<span class="note">what each partner's servers received from the dispatcher · ${input.seq} requests</span></header>
<main data-seq="${input.seq}">${sections.join('\n')}</main>
<script>
// Reload when something new arrived, unless the reader opened a request's details.
(function(){var seq=${Number(input.seq)};setInterval(function(){if(document.querySelector('details[open]'))return;
fetch('/api/received').then(function(r){return r.json()}).then(function(b){if(b.seq!==seq)location.reload()}).catch(function(){})},2000)})();
</script></body></html>`;
}

function section(partner: string, entries: readonly InboxEntry[], sdk: Sdk | undefined): string {
  const events = entries.flatMap((e) => e.events.map((ev) => ({ entry: e, ev })));
  const views = events.filter((x) => x.ev.pageView);
  const others = events.length - views.length;
  const visitors = new Map<string, number>();
  for (const v of views) if (v.ev.visitorId !== undefined) visitors.set(v.ev.visitorId, (visitors.get(v.ev.visitorId) ?? 0) + 1);
  const idName = events[0]?.ev.idName ?? '';
  const rows = views
    .slice(-ROWS)
    .reverse()
    .map(({ entry, ev }) => `<tr class="view" data-visitor="${esc(ev.visitorId)}" data-page="${esc(ev.page)}" data-ua="${esc(entry.userAgent)}">
<td>${esc(new Date(entry.at).toLocaleTimeString('en-GB'))}</td><td>${esc(ev.name)}</td>
<td class="page">${esc(pathOf(ev.page))}${ev.title === undefined ? '' : `<br><span class="muted">${esc(ev.title)}</span>`}</td>
<td>${idTag(ev.visitorId)}</td>
<td class="req"><details><summary title="${esc(entry.path)}">${esc(entry.method)} ${esc(entry.path.length > 48 ? `${entry.path.slice(0, 48)}…` : entry.path)}</summary>
<pre>${esc(JSON.stringify({ userAgent: entry.userAgent, forwardedFor: entry.forwardedFor, event: ev.payload }, null, 2))}</pre></details></td></tr>`)
    .join('');
  return `<section id="partner-${esc(partner)}" data-partner="${esc(partner)}">
<h2>${esc(partner)} <span class="muted">${sdk === undefined ? 'a classic image pixel (inline script)' : `${esc(sdk.source)} ${esc(sdk.version)} from npm`}</span></h2>
<div class="muted">${views.length} page views${others > 0 ? `, ${others} other events` : ''} · visitor id: ${esc(idName || '—')}</div>
<div class="visitors">${[...visitors].map(([id, n]) => `<span>${idTag(id)} ${n} page view${n === 1 ? '' : 's'}</span>`).join('') || '<span class="muted">no page view yet: accept the banner in the shop, then browse</span>'}</div>
<table><tr><th>time</th><th>event</th><th>page</th><th>visitor id</th><th>request</th></tr>${rows}</table></section>`;
}

function idTag(id: string | undefined): string {
  if (id === undefined) return '<span class="muted">—</span>';
  return `<span class="id" style="background:hsl(${hue(id)} 70% 88%)" title="${esc(id)}">${esc(id.length > 24 ? `${id.slice(0, 24)}…` : id)}</span>`;
}

function pathOf(page: string | undefined): string {
  if (page === undefined) return '';
  try {
    const u = new URL(page);
    return u.pathname + u.search;
  } catch {
    return page;
  }
}
