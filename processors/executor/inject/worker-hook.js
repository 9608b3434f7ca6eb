/**
 * Evaluated in each dedicated worker before its script runs (slot.ts): the Fetch domain reports
 * a worker's fetch() and XHR both as `XHR`, so fetch() calls are reported by URL through a CDP
 * binding (removed from the worker's global first); and the worker's navigator shows the
 * visitor's core count and memory, as the page's does. A Proxy keeps `fetch` reading as native
 * code.
 *
 * Plain ES2020, never transpiled; in-page.ts calls it with the worker's global and the visit's
 * values.
 */

/**
 * @typedef {object} WorkerEnv
 * @property {number} hardwareConcurrency
 * @property {number | null} deviceMemory null: the browser has none (Firefox, Safari)
 */

/**
 * @param {Record<string, unknown>} g the worker's global scope
 * @param {WorkerEnv | null} env
 * @param {string} binding name of the CDP binding that reports fetch() URLs
 */
export function workerHook(g, env, binding) {
  var report = g[binding];
  Reflect.deleteProperty(g, binding);
  var WN = g.WorkerNavigator;
  if (env && typeof WN === 'function') {
    var P = /** @type {object} */ (WN.prototype);
    var values = env;
    try {
      Object.defineProperty(P, 'hardwareConcurrency', { configurable: true, enumerable: true, get: function () { return values.hardwareConcurrency; } });
    } catch {
      // a browser that refuses keeps its own value
    }
    try {
      if (values.deviceMemory === null) Reflect.deleteProperty(P, 'deviceMemory');
      else Object.defineProperty(P, 'deviceMemory', { configurable: true, enumerable: true, get: function () { return values.deviceMemory; } });
    } catch {
      // as above
    }
  }
  var realFetch = g.fetch;
  if (typeof report !== 'function' || typeof realFetch !== 'function') return;
  var send = report;
  g.fetch = new Proxy(realFetch, {
    apply: function (target, self, args) {
      try {
        var input = args[0];
        // Read at the call, never before the worker's script starts: reading the location of a
        // worker still paused at its start and using it later crashed the renderer.
        var where = /** @type {{ href: string }} */ (g.location);
        send(new URL(input && typeof input === 'object' && 'url' in input ? input.url : String(input), where.href).href);
      } catch {
        // an URL the worker's fetch() itself will reject
      }
      return Reflect.apply(target, self, args);
    },
  });
}
