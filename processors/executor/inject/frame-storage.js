/**
 * Registered on each tab for every new document (slot.ts); acts only in a cross-origin http(s)
 * frame (a partner iframe). Before any of the frame's scripts run, it fetches its origin's
 * localStorage from the jar synchronously (the executor answers `…/in`; nothing is there between
 * visits, so a previous visitor's storage is cleared), and on `pagehide` it sends a snapshot
 * (`…/out`: what a frame removed from the page leaves). Neither request leaves the browser or is
 * listed (page/frame-storage.ts answers them).
 *
 * Plain ES2020, never transpiled; in-page.ts calls it with the tab's secret token.
 */

/** @param {string} token secret path segment of this tab's exchange */
export function frameStorage(token) {
  var top = window.top;
  if (window === top) return;
  // The tab's leave binding (slot.ts) is for the top-level bootstrap only: frames must not see it.
  try { delete /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (window)).__tagstream_leave; } catch { /* not there */ }
  try {
    // Same-origin with the top document: not a partner frame.
    if (top && top.location.href) return;
  } catch {
    // cross-origin: a partner frame
  }
  if (!/^https?:$/.test(location.protocol)) return;
  var base = location.origin + '/__tagstream_frame_' + token + '/';
  var ls;
  try {
    ls = window.localStorage;
  } catch {
    return;
  }
  var store = ls;
  try {
    var x = new XMLHttpRequest();
    x.open('GET', base + 'in', false);
    x.send();
    store.clear();
    /** @type {unknown} */
    var d = x.status === 200 ? JSON.parse(x.responseText) : null;
    if (d && typeof d === 'object') {
      var items = /** @type {Record<string, unknown>} */ (d);
      for (var k in items) store.setItem(k, String(items[k]));
    }
  } catch {
    try {
      store.clear();
    } catch {
      // storage refused: nothing of a previous visitor can be read either
    }
  }
  // The page's own sendBeacon and JSON may be replaced by a tag later.
  var nb = Navigator.prototype.sendBeacon, st = JSON.stringify;
  window.addEventListener('pagehide', function () {
    try {
      /** @type {Record<string, string | null>} */
      var s = {};
      for (var i = 0; i < store.length; i++) {
        var k = store.key(i);
        if (k !== null) s[k] = store.getItem(k);
      }
      nb.call(navigator, base + 'out', st(s));
    } catch {
      // the snapshot is best effort: the frame's storage is then kept from the jar as it was
    }
  }, true);
}
