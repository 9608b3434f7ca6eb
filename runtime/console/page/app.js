/**
 * The console's page (runtime/console/server.ts serves it; docs/console.md). Polls the JSON API
 * and renders with DOM nodes and textContent only: every string shown here came from a tag, a
 * partner or a visitor, and none of it is ever parsed as HTML.
 */
/* global document, fetch, location, setTimeout */
(function () {
  'use strict';

  /** @typedef {Record<string, any>} Json */

  /** @type {string | undefined} */
  var selected = location.hash.startsWith('#event=') ? decodeURIComponent(location.hash.slice(7)) : undefined;
  var replayAvailable = false;
  /** @type {Json | undefined} */
  var lastReplay;

  /**
   * @param {string} tag
   * @param {Record<string, string> | null} [attrs]
   * @param {(Node | string | number | null | undefined)[]} [children]
   * @returns {HTMLElement}
   */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k of Object.keys(attrs)) node.setAttribute(k, String(attrs[k]));
    for (var c of children || []) {
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /** @param {string} state @param {string} [label] */
  function badge(state, label) {
    return el('span', { class: 'badge s-' + state.replace(/[^a-z-]/g, '') }, [label || state]);
  }

  /** @param {HTMLElement} node @param {(Node | null)[]} children */
  function replace(node, children) {
    node.replaceChildren.apply(node, /** @type {Node[]} */ (children.filter(Boolean)));
  }

  /** @param {string} path @param {RequestInit} [init] @returns {Promise<Json>} */
  function api(path, init) {
    return fetch(path, init).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body && body.error && body.error.reason) || 'HTTP ' + r.status);
        return body;
      });
    });
  }

  /** @param {string} iso */
  function time(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleTimeString();
  }

  /** @param {string} url */
  function shortUrl(url) {
    try {
      var u = new URL(url);
      return u.host + u.pathname + u.search;
    } catch {
      return url;
    }
  }

  /** @param {unknown} value */
  function pretty(value) {
    return el('pre', null, [typeof value === 'string' ? value : JSON.stringify(value, null, 2)]);
  }

  /** @param {[string, unknown][]} rows */
  function kv(rows) {
    return el(
      'table',
      { class: 'kv' },
      rows
        .filter(function (r) {
          return r[1] !== undefined && r[1] !== null && r[1] !== '';
        })
        .map(function (r) {
          var v = r[1];
          return el('tr', null, [el('th', null, [r[0]]), el('td', { class: 'wrap' }, [typeof v === 'object' ? JSON.stringify(v) : String(v)])]);
        }),
    );
  }

  /** @param {string[]} heads @param {(Node | string | number | null | undefined)[][]} rows @param {string[]} [numeric] */
  function table(heads, rows, numeric) {
    var num = numeric || [];
    return el('table', null, [
      el('tr', null, heads.map(function (h) {
        return el('th', num.includes(h) ? { class: 'num' } : null, [h]);
      })),
    ].concat(rows.map(function (cells) {
      return el('tr', null, cells.map(function (c, i) {
        return el('td', num.includes(heads[i] || '') ? { class: 'num' } : { class: 'wrap' }, [c]);
      }));
    })));
  }

  function renderCounters(/** @type {Json} */ view) {
    replace(/** @type {HTMLElement} */ (document.getElementById('counter-window')), [document.createTextNode('last ' + view.minutes + ' minutes')]);
    var heads = ['partner', 'ok', 'error', 'timeout', 'skipped', 'captured', 'delivered', 'retry', 'dead', 'not sent', 'captured / min'];
    var rows = view.partners.map(function (/** @type {Json} */ p) {
      var max = Math.max.apply(null, [1].concat(p.perMinute.map(function (/** @type {Json} */ m) { return m.captured; })));
      var bars = el('span', { class: 'bars', title: 'captured requests per minute' }, p.perMinute.map(function (/** @type {Json} */ m) {
        // CSSOM, not a style attribute: the page's CSP forbids inline styles.
        var bar = el('i');
        bar.style.height = Math.max(1, Math.round((m.captured / max) * 16)) + 'px';
        return bar;
      }));
      var t = p.total;
      return [p.partner, t.ok, t.error, t.timeout, t.skipped, t.captured, t.delivered, t.retry, t.dead, t.notSent, bars];
    });
    replace(/** @type {HTMLElement} */ (document.getElementById('counters')), [table(heads, rows, heads.slice(1, 10))]);
  }

  function renderHosts(/** @type {Json} */ body) {
    var node = /** @type {HTMLElement} */ (document.getElementById('hosts'));
    if (body.hosts.length === 0) return replace(node, [el('tr', null, [el('td', { class: 'muted' }, ['none so far'])])]);
    replace(node, [table(['host', 'partner', 'reason', 'count', 'last seen', 'example'], body.hosts.map(function (/** @type {Json} */ h) {
      return [h.host, h.partner || '(unattributed)', h.reason, h.count, time(h.lastSeen), el('span', { class: 'mono' }, [h.example])];
    }), ['count'])]);
  }

  function renderEvents(/** @type {Json} */ body) {
    var list = /** @type {HTMLElement} */ (document.getElementById('events'));
    if (body.events.length === 0) return replace(list, [el('li', { class: 'muted' }, ['No event yet: open the shop and view a page.'])]);
    replace(list, body.events.map(function (/** @type {Json} */ e) {
      var li = el('li', e.id === selected ? { class: 'selected' } : null, [
        el('span', { class: 'muted' }, [time(e.at) + ' · ' + e.type + (e.replayed ? ' · replay' : '') + ' · ' + String(e.userId).slice(0, 12)]),
        el('span', { class: 'url' }, [shortUrl(e.url)]),
        el('span', null, e.partners.map(function (/** @type {Json} */ p) {
          return badge(p.status, p.partner);
        }).concat([el('span', { class: 'muted' }, [e.requests + ' req · ' + e.delivered + ' delivered' + (e.failed ? ' · ' + e.failed + ' failed' : '')])])),
        e.error ? el('div', { class: 's-error' }, [e.error]) : null,
      ]);
      li.addEventListener('click', function () {
        selected = e.id;
        lastReplay = undefined;
        location.hash = 'event=' + encodeURIComponent(e.id);
        void refresh();
      });
      return li;
    }));
  }

  /** @param {Json} decoded */
  function renderDecoded(decoded) {
    var out = [];
    if (decoded.query.length > 0) {
      out.push(el('h3', null, ['Query string']));
      out.push(fieldsTable(decoded.query));
    }
    var b = decoded.body;
    if (b.kind !== 'none') out.push(el('h3', null, ['Body ', el('span', { class: 'muted' }, [b.via.length ? '(' + b.via.join(' → ') + ')' : ''])]));
    if (b.kind === 'json') out.push(pretty(b.value));
    else if (b.kind === 'form') out.push(fieldsTable(b.fields));
    else if (b.kind === 'text') out.push(pretty(b.text));
    else if (b.kind === 'binary') out.push(el('p', { class: 'muted' }, [b.bytes + ' bytes, not text: ' + b.preview]));
    return out;
  }

  /** @param {Json[]} fields */
  function fieldsTable(fields) {
    return table(['name', 'value'], fields.map(function (f) {
      return [el('span', { class: 'mono' }, [f.name]), f.decoded ? el('div', null, [el('span', { class: 'muted' }, ['(' + f.decoded.via.join(' → ') + ')']), pretty(f.decoded.value)]) : el('span', { class: 'mono' }, [f.value])];
    }));
  }

  /** @param {Json} r */
  function renderRequest(r) {
    var d = r.dispatch;
    var state = badge(d.state, d.state + (d.status ? ' ' + d.status : ''));
    var attempts = d.attempts.length === 0 ? el('p', { class: 'muted' }, [d.state === 'pending' ? 'not delivered yet' : d.reason || 'no attempt']) : table(['at', 'status', 'error'], d.attempts.map(function (/** @type {Json} */ a) {
      return [time(a.at), a.status === undefined ? a.code || '' : a.status, a.error || ''];
    }));
    return el('div', { class: 'req', 'data-partner': r.partner || '' }, [
      el('div', { class: 'req-head' }, [
        el('strong', null, [r.partner || '(unattributed)']),
        el('span', { class: 'mono' }, [r.method]),
        el('span', { class: 'mono wrap req-url' }, [r.url]),
        el('span', { class: 'muted' }, [r.transport + ' · ' + r.bodyBytes + ' B']),
        state,
      ]),
      el('details', null, [el('summary', null, ['decoded request and dispatch attempts'])].concat(renderDecoded(r.decoded), [el('h3', null, ['Dispatch' + (d.notBefore ? ' (next attempt after ' + time(d.notBefore) + ')' : '') + (d.error ? ': ' + d.error : '')]), attempts])),
    ]);
  }

  /** A value shown whole when short, else its start with the rest one click away. @param {string} text */
  function longText(text) {
    if (text.length <= 120) return el('span', { class: 'mono' }, [text]);
    return el('details', null, [el('summary', { class: 'mono' }, [text.slice(0, 120) + '…']), el('pre', null, [text])]);
  }

  /** @param {Json} diff */
  function renderJar(diff) {
    var rows = diff.cookies.map(function (/** @type {Json} */ c) {
      return [badge(c.change), 'cookie', el('span', { class: 'mono' }, [c.name]), c.domain + c.path, longText(c.before === undefined ? '' : c.before), el('div', null, [longText(c.after === undefined ? '' : c.after), c.attributes ? el('span', { class: 'muted' }, [' (' + c.attributes.join(', ') + ' changed)']) : null])];
    }).concat(diff.localStorage.map(function (/** @type {Json} */ s) {
      return [badge(s.change), 'localStorage', el('span', { class: 'mono' }, [s.key]), s.origin, longText(s.before === undefined ? '' : s.before), longText(s.after === undefined ? '' : s.after)];
    }));
    if (rows.length === 0) return el('p', { class: 'muted' }, ['The jar is empty before and after.']);
    return el('div', { id: 'jar-diff' }, [table(['change', 'kind', 'name', 'where', 'before', 'after'], rows)]);
  }

  /** What `replay --dry-run` would change for this event, per partner (runtime/operator/request-diff.ts). @param {Json} d */
  function renderDryRun(d) {
    /** @param {Json} r */
    function summary(r) {
      return el('span', { class: 'mono wrap' }, [r.method + ' ' + r.url]);
    }
    var rows = [];
    for (var p of d.partners) {
      var state = p.added.length + p.removed.length + p.changed.length === 0 ? 'same' : 'changed';
      rows.push([el('strong', null, [p.partner]), badge(state, state === 'same' ? 'no difference' : 'differs'), p.before + ' → ' + p.after, p.unchanged + ' unchanged', '']);
      for (var a of p.added) rows.push(['', badge('added'), '', '', summary(a)]);
      for (var r of p.removed) rows.push(['', badge('removed'), '', '', summary(r)]);
      for (var c of p.changed) {
        rows.push(['', badge('changed'), '', '', el('div', null, [summary(c.after)].concat(c.params.map(function (/** @type {Json} */ x) {
          return el('div', { class: 'mono wrap' }, [x.name + ': ' + (x.before === null ? '(absent)' : x.before) + ' → ' + (x.after === null ? '(absent)' : x.after)]);
        })))]);
      }
    }
    return el('div', null, [
      d.error ? el('p', { class: 's-error' }, ['The executor failed: ' + d.error]) : null,
      el('p', { class: 'muted' }, ['Ran again with the partners as configured now and the visitor\'s latest jar; nothing was published. Partners: ' + d.trackers.map(function (/** @type {Json} */ t) { return t.partner + ' ' + t.status; }).join(', ')]),
      table(['partner', 'result', 'requests before → after', '', 'request'], rows),
    ]);
  }

  /** @param {Json} t */
  function renderTrace(t) {
    var v = t.visitor;
    var dev = v.device || {};
    var replayButton = el('button', replayAvailable ? { id: 'replay' } : { id: 'replay', disabled: 'disabled', title: 'replay --dry-run is not available in this build' }, ['Replay this event (dry-run)']);
    replayButton.addEventListener('click', function () {
      replayButton.setAttribute('disabled', 'disabled');
      void api('/api/events/' + encodeURIComponent(t.id) + '/replay', { method: 'POST', headers: { 'x-tagstream-console': '1' } }).then(
        function (body) { lastReplay = { ok: true, body: body }; void refresh(); },
        function (err) { lastReplay = { ok: false, error: String(err && err.message) }; void refresh(); },
      );
    });
    var exec = t.execution;
    var replayOut = lastReplay === undefined ? null : el('div', { id: 'replay-result' }, [el('h3', null, ['Replay (dry-run)']), lastReplay.ok ? renderDryRun(lastReplay.body.dryRun) : el('p', { class: 's-error' }, [lastReplay.error])]);
    return [
      el('div', { class: 'trace-head' }, [el('h2', null, ['Event ', el('span', { class: 'mono' }, [t.eventId])]), el('span', { class: 'muted' }, [t.type + ' · ' + time(t.at) + (t.replayed ? ' · replayed' : '')]), replayButton]),
      replayOut,
      el('h3', null, ['Visitor']),
      kv([
        ['visitor id', t.userId],
        ['page', v.page.url],
        ['title', v.page.title],
        ['referrer', v.page.referrer],
        ['user agent', dev.userAgent],
        ['language', (dev.languages || [dev.language]).join(', ')],
        ['screen', dev.screen ? dev.screen.width + '×' + dev.screen.height + ' @' + dev.screen.pixelRatio : undefined],
        ['viewport', dev.viewport ? dev.viewport.width + '×' + dev.viewport.height : undefined],
        ['time zone', dev.timezone],
        ['IP (truncated)', v.ip],
        ['consent', v.consent],
        ['dataLayer', v.data && Object.keys(v.data).length ? v.data : undefined],
      ]),
      el('h3', null, ['Partners ', el('span', { class: 'muted' }, ['executor ' + exec.durationMs + ' ms, ' + exec.attempts + ' attempt(s)' + (exec.error ? ' — ' + exec.error.message : '')])]),
      table(['partner', 'outcome', 'duration', 'requests', 'error / warnings'], t.partners.map(function (/** @type {Json} */ p) {
        return [p.partner, badge(p.status), p.durationMs + ' ms', p.requests, [p.error].concat(p.warnings || []).filter(Boolean).join('; ')];
      }), ['duration', 'requests']),
      el('h3', null, ['Captured requests (' + t.requests.length + ')']),
      el('div', { id: 'requests' }, t.requests.length ? t.requests.map(renderRequest) : [el('p', { class: 'muted' }, ['none'])]),
      el('h3', null, ['Jar: before → after']),
      renderJar(t.jar.diff),
    ];
  }

  var trace = /** @type {HTMLElement} */ (document.getElementById('trace'));
  /** @type {string | undefined} */
  var shownTrace;

  function refresh() {
    var status = /** @type {HTMLElement} */ (document.getElementById('status'));
    var work = [
      api('/api/events').then(renderEvents),
      api('/api/counters').then(renderCounters),
      api('/api/hosts').then(renderHosts),
    ];
    if (selected !== undefined) {
      var id = selected;
      work.push(api('/api/events/' + encodeURIComponent(id)).then(function (t) {
        // Keep what the operator opened: re-render only when something changed.
        var key = JSON.stringify(t) + JSON.stringify(lastReplay || null);
        if (key === shownTrace) return;
        var open = Array.prototype.map.call(trace.querySelectorAll('details'), function (/** @type {HTMLDetailsElement} */ d) { return d.open; });
        shownTrace = key;
        replace(trace, renderTrace(t));
        trace.querySelectorAll('details').forEach(function (d, i) { if (open[i]) d.open = true; });
      }, function () {
        replace(trace, [el('p', { class: 'muted' }, ['That event is no longer in the console buffer.'])]);
      }));
    }
    return Promise.all(work).then(
      function () { replace(status, [document.createTextNode('updated ' + new Date().toLocaleTimeString())]); },
      function (err) { replace(status, [document.createTextNode('console unreachable: ' + String(err && err.message))]); },
    );
  }

  void api('/api/config').then(function (c) {
    replayAvailable = c.replay === true;
    replace(/** @type {HTMLElement} */ (document.getElementById('links')), c.links.map(function (/** @type {Json} */ l) {
      return el('a', { href: /^https?:\/\//.test(l.url) ? l.url : '#', target: '_blank', rel: 'noopener' }, [l.label]);
    }));
  }).finally(function loop() {
    void refresh().finally(function () { setTimeout(loop, 2000); });
  });
})();
