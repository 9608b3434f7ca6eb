/**
 * The one URL matcher of `allowHosts` / `captureHosts` entries (DESIGN.md "Contract details"):
 * the executor's router (egress.ts `matchPolicy`) imports it, and the in-page bootstrap carries
 * the same text (in-page.ts concatenates it), so the page and the executor can never disagree
 * on which partner an URL belongs to.
 *
 * Plain ES2020 and no imports: it runs in the visitor's page as well as in Node.
 */

/**
 * How specific an entry's match of `url` is (0 = no match). URL prefixes beat host:port, which
 * beats host, and longer beats shorter, so "the longest matching entry decides" even across
 * entry kinds.
 * @param {string} entry a host, `host:port`, or an `http(s)://` URL prefix
 * @param {URL} url
 * @returns {number}
 */
export function entryMatch(entry, url) {
  if (/^https?:\/\//i.test(entry)) {
    if (url.href.startsWith(entry)) return 1000 + entry.length;
    // The entry as the URL parser writes it (lower-case host, default port dropped).
    var normal;
    try {
      normal = new URL(entry).href;
    } catch {
      return 0;
    }
    return url.href.startsWith(normal) ? 1000 + entry.length : 0;
  }
  var lower = entry.toLowerCase();
  var m = /^(.*?)(?::(\d+))?$/.exec(lower);
  var host = m && m[1] !== undefined ? m[1] : lower;
  var port = m ? m[2] : undefined;
  if (host !== url.hostname.toLowerCase()) return 0;
  if (port !== undefined) return port === (url.port || (url.protocol === 'https:' ? '443' : '80')) ? 500 + lower.length : 0;
  return 100 + lower.length;
}

/**
 * The longest matching entry (the first of equals), and whether another partner lists an entry
 * that matches as well (a shared CDN or collector: it names none of them).
 * @template {{ partner: string, entry: string }} E
 * @param {readonly E[]} entries
 * @param {URL} url
 * @returns {{ match: E | null, shared: boolean }}
 */
export function longestMatch(entries, url) {
  /** @type {E | null} */
  var match = null;
  var score = 0;
  var shared = false;
  for (var i = 0; i < entries.length; i++) {
    var e = entries[i];
    if (e === undefined) continue;
    var s = entryMatch(e.entry, url);
    if (s > score) {
      match = e;
      score = s;
      shared = false;
    } else if (s > 0 && s === score && match !== null && e.partner !== match.partner) {
      shared = true;
    }
  }
  return { match: match, shared: shared };
}
