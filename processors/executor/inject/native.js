/**
 * Our wrappers read as the browser's own functions (Function.prototype.toString), as they do in
 * the visitor's browser: tags that check for tampering must see nothing unusual.
 */
import { cacheMethods, cryptoMethods } from './requests.js';
import { protoOf, safe, windowRecord } from './state.js';

/**
 * @param {WeakMap<object, string>} nativeText
 * @param {unknown} f
 * @param {string} name
 */
function asNative(nativeText, f, name) {
  if (typeof f === 'function') nativeText.set(f, 'function ' + name + '() { [native code] }');
}

/**
 * Masks every function and accessor the bootstrap replaced; call it last.
 * @param {{ now: () => number }} FakeDate the page-time Date class (clock.js)
 */
export function maskNative(FakeDate) {
  var G = windowRecord();
  /** @type {WeakMap<object, string>} */
  var nativeText = new WeakMap();
  /** @param {unknown} obj @param {string} name */
  function method(obj, name) { safe(function () { asNative(nativeText, /** @type {Record<string, unknown>} */ (obj)[name], name); }); }
  /** @param {object} obj @param {string} name */
  function accessor(obj, name) {
    safe(function () {
      var d = Object.getOwnPropertyDescriptor(obj, name);
      if (d && d.get) asNative(nativeText, d.get, 'get ' + name);
      if (d && d.set) asNative(nativeText, d.set, 'set ' + name);
    });
  }
  var fts = Function.prototype.toString;
  /** @this {Function} */
  var toStr = function toString() { var t = nativeText.get(this); return t !== undefined ? t : fts.call(this); };
  asNative(nativeText, toStr, 'toString');
  Function.prototype.toString = toStr;
  asNative(nativeText, G.Date, 'Date');
  asNative(nativeText, FakeDate.now, 'now');
  ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'fetch', 'alert', 'confirm', 'prompt', 'print', 'open']
    .forEach(function (n) { method(window, n); });
  safe(function () { method(G.chrome, 'csi'); method(G.chrome, 'loadTimes'); });
  /** @type {[object | null, string[]][]} */
  var methods = [[XMLHttpRequest.prototype, ['open', 'send']], [Navigator.prototype, ['sendBeacon']], [Element.prototype, ['setAttribute']],
    [HTMLFormElement.prototype, ['submit']], [Performance.prototype, ['now']], [History.prototype, ['pushState', 'replaceState']],
    [EventTarget.prototype, ['addEventListener', 'removeEventListener']], [IDBFactory.prototype, ['open', 'deleteDatabase']],
    [protoOf('NavigatorUAData'), ['getHighEntropyValues']], [Storage.prototype, ['setItem']]];
  methods.forEach(function (e) { e[1].forEach(function (n) { method(e[0], n); }); });
  safe(function () { cacheMethods().forEach(function (n) { method(CacheStorage.prototype, n); }); });
  safe(function () { cryptoMethods().forEach(function (n) { method(SubtleCrypto.prototype, n); }); });
  safe(function () { ['set', 'delete'].forEach(function (n) { method(CookieStore.prototype, n); }); });
  /** @type {[object, string[]][]} */
  var accessors = [[Navigator.prototype, ['webdriver', 'languages', 'language', 'hardwareConcurrency', 'deviceMemory']],
    [Screen.prototype, ['colorDepth', 'pixelDepth', 'availWidth', 'availHeight']],
    [Document.prototype, ['referrer', 'cookie']], [window, ['outerWidth', 'outerHeight']],
    [HTMLImageElement.prototype, ['src']], [HTMLScriptElement.prototype, ['src']], [HTMLIFrameElement.prototype, ['src']]];
  accessors.forEach(function (e) { e[1].forEach(function (n) { accessor(e[0], n); }); });
}
