/**
 * The console page's HTML and stylesheet, as modules so that the compiled build (dist/) carries
 * them; app.js, a real .js file, is emitted by tsc next to this one.
 */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tagstream console</title>
<link rel="stylesheet" href="/app.css">
<script defer src="/app.js"></script>
</head>
<body>
<header>
  <h1>tagstream <span>console</span></h1>
  <nav id="links"></nav>
  <span id="status" class="muted">connecting…</span>
</header>
<main>
  <section id="overview">
    <div class="panel">
      <h2>Partners <span id="counter-window" class="muted"></span></h2>
      <table id="counters"></table>
    </div>
    <div class="panel">
      <h2>Undeclared hosts <span class="muted">captured requests no partner declares in captureHosts: not sent</span></h2>
      <table id="hosts"></table>
    </div>
  </section>
  <section id="work">
    <div class="panel" id="events-panel">
      <h2>Recent events</h2>
      <ol id="events"></ol>
    </div>
    <div class="panel" id="trace-panel">
      <div id="trace"><p class="muted">Select an event to see its trace.</p></div>
    </div>
  </section>
</main>
</body>
</html>
`;

export const APP_CSS = `:root { --bg: #f6f7f9; --panel: #fff; --line: #e3e6ea; --ink: #1d2733; --muted: #6b7785; --ok: #137a3a; --warn: #a15c00; --bad: #b3261e; --info: #2456b3; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 24px; padding: 10px 18px; background: #18222e; color: #fff; }
header h1 { margin: 0; font-size: 17px; }
header h1 span { font-weight: 400; opacity: .7; }
header nav a { color: #9cc3ff; margin-right: 14px; }
header #status { margin-left: auto; color: #b8c2cc; }
main { padding: 12px 18px; }
h2 { font-size: 14px; margin: 0 0 8px; }
h3 { font-size: 13px; margin: 14px 0 6px; }
.muted { color: var(--muted); font-weight: 400; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; min-width: 0; }
#overview { display: grid; grid-template-columns: 3fr 2fr; gap: 12px; margin-bottom: 12px; }
#work { display: grid; grid-template-columns: 360px 1fr; gap: 12px; align-items: start; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
#events { list-style: none; margin: 0; padding: 0; max-height: 78vh; overflow: auto; }
#events li { padding: 6px 8px; border-bottom: 1px solid var(--line); cursor: pointer; }
#events li:hover { background: #f0f4fa; }
#events li.selected { background: #e4edfb; }
#events .url { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; margin-right: 4px; border: 1px solid currentColor; }
.s-ok, .s-delivered { color: var(--ok); }
.s-skipped, .s-pending, .s-same { color: var(--muted); }
.s-retry, .s-timeout, .s-changed { color: var(--warn); }
.s-error, .s-dead, .s-not-sent, .s-removed { color: var(--bad); }
.s-added { color: var(--info); }
.kv th { width: 140px; }
code, pre, .mono { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f3f5f8; border: 1px solid var(--line); border-radius: 4px; padding: 6px 8px; margin: 4px 0; white-space: pre-wrap; word-break: break-all; max-height: 320px; overflow: auto; }
.wrap { word-break: break-all; }
.req { border: 1px solid var(--line); border-radius: 5px; padding: 6px 8px; margin-bottom: 8px; }
.req-head { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.req-url { flex: 1 1 300px; }
details summary { cursor: pointer; color: var(--info); }
button { font: inherit; padding: 3px 10px; border: 1px solid #9aa5b1; background: #fff; border-radius: 4px; cursor: pointer; }
button:disabled { cursor: not-allowed; opacity: .55; }
.bars { display: inline-flex; gap: 1px; align-items: flex-end; height: 16px; }
.bars i { display: inline-block; width: 5px; background: #7ea6e0; }
.trace-head { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
.trace-head h2 { margin: 0; }
.badge { white-space: nowrap; }
#jar-diff td:nth-child(-n+4) { white-space: nowrap; }
#jar-diff td:nth-child(n+5) { width: 40%; }
`;
