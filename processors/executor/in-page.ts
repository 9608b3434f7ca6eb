/**
 * The in-page scripts of inject/ (real .js files, linted and type-checked through JSDoc), read
 * once when this module loads and assembled into the sources the tabs run.
 *
 * Each file is an ES module so that TypeScript and the executor can import it (egress.ts imports
 * match.js); a page gets it as plain script text: its `import … from './x.js'` lines are dropped
 * (the imported file is concatenated first) and so is `export` before its declarations. The files
 * are read next to this module, so the build (tsc with allowJs emits them to dist/) and the
 * source tree (tsx) both find them.
 */
import { readFileSync } from 'node:fs';
import { ExecutorUnavailableError } from '../../core/errors.ts';
import type { WorkerEnv } from './inject/worker-hook.js';

const INJECT_DIR = new URL('./inject/', import.meta.url);

const IMPORT = /^import\s+\{[^}]*\}\s+from\s+'\.\/([\w-]+\.js)';?\s*$/;

/** A module of inject/ as function-body text, and the inject/ files it imports. */
export function asScriptBody(file: string, text: string): { body: string; imports: string[] } {
  const out: string[] = [];
  const imports: string[] = [];
  for (const line of text.split('\n')) {
    const imported = IMPORT.exec(line);
    if (imported?.[1]) {
      imports.push(imported[1]);
      continue;
    }
    if (/^export\s+(?:async\s+)?function\s/.test(line)) {
      out.push(line.replace(/^export\s+/, ''));
      continue;
    }
    // Anything else would need a real bundler: refuse it where it is written, not in a tab.
    if (/^\s*(?:import|export)\b/.test(line)) {
      throw new ExecutorUnavailableError(`inject/${file}: unsupported module syntax for an in-page script: ${line.trim()}`, { file });
    }
    out.push(line);
  }
  return { body: out.join('\n'), imports };
}

/**
 * `entry` and every inject/ file it imports, each once, imports first. The files share one scope
 * in the page: a function name declared twice would silently replace the other, so it is refused.
 */
export function bundleOf(entry: string, readText: (file: string) => string): string {
  const bodies: string[] = [];
  const seen = new Set<string>();
  const declared = new Map<string, string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readText(file);
    const { body, imports } = asScriptBody(file, text);
    for (const dep of imports) visit(dep);
    for (const m of text.matchAll(/^(?:export\s+)?(?:async\s+)?function\s+([\w$]+)/gm)) {
      const name = m[1] ?? '';
      const other = declared.get(name);
      if (other !== undefined) throw new ExecutorUnavailableError(`inject/${file}: function ${name} is also declared in inject/${other}`, { file, name });
      declared.set(name, file);
    }
    bodies.push(body);
  };
  visit(entry);
  return bodies.join('\n');
}

/**
 * Whole-line comments (block comments starting a line included) and indentation cost parse time
 * on every tab; the files stay readable. Safe for these files: no template literals, and no
 * string or regular expression starts a line with a comment marker.
 */
export function compact(text: string): string {
  const out: string[] = [];
  let inBlock = false;
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (inBlock) {
      const close = line.indexOf('*/');
      if (close < 0) continue;
      inBlock = false;
      line = line.slice(close + 2).trim();
    } else if (line.startsWith('/*')) {
      const close = line.indexOf('*/', 2);
      if (close < 0) {
        inBlock = true;
        continue;
      }
      line = line.slice(close + 2).trim();
    }
    if (line === '' || line.startsWith('//')) continue;
    out.push(line);
  }
  return out.join('\n');
}

function readInject(file: string): string {
  return readFileSync(new URL(file, INJECT_DIR), 'utf8');
}

/** `entry`'s bundle in one strict function scope that evaluates to its function `fn`. */
function assemble(entry: string, fn: string): string {
  const text = compact(`(function () {\n'use strict';\n${bundleOf(entry, readInject)}\nreturn ${fn};\n})()`);
  // Inlined in a <script> element when the per-tab injection is unavailable (page/document.ts).
  if (/<\/script|<!--/i.test(text)) throw new ExecutorUnavailableError(`in-page script ${entry} contains "</script" or "<!--"`, { entry });
  return text;
}

/** Expression: the bootstrap function (inject/bootstrap.js `boot` and the modules it imports). */
export const BOOTSTRAP_FUNCTION = assemble('bootstrap.js', 'boot');

/**
 * Registered once per tab (Page.addScriptToEvaluateOnNewDocument, see slot.ts): defines the
 * bootstrap as a hidden function of each new top-level document, which the synthetic document's
 * first script takes away and calls with the visit's config. The bootstrap then crosses CDP once
 * per tab instead of once per view, the HTML parser no longer scans it, and V8 finds its compiled
 * code in the isolate's cache (same source every time, unlike an inline script carrying the
 * visit's config). Frames (partner iframes) get nothing.
 */
export const BOOTSTRAP_INJECTION =
  `if(window===window.top)Object.defineProperty(window,'__tagstream_boot',{configurable:true,value:${BOOTSTRAP_FUNCTION}})`;

const FRAME_STORAGE_FUNCTION = assemble('frame-storage.js', 'frameStorage');
const WORKER_HOOK_FUNCTION = assemble('worker-hook.js', 'workerHook');

/** Path segment of a tab's frame storage exchange (inject/frame-storage.js builds the same). */
export function frameStoragePath(token: string): string {
  return `/__tagstream_frame_${token}/`;
}

/** The per-tab script of inject/frame-storage.js, bound to the tab's secret token. */
export function frameStorageInjection(token: string): string {
  return `${FRAME_STORAGE_FUNCTION}(${JSON.stringify(token)})`;
}

/**
 * CDP binding the top-level page reports through while its document goes away (page/leave.ts),
 * when evaluations are no longer answered; inject/state.js takes it, frames drop it.
 */
export const LEAVE_BINDING = '__tagstream_leave';

/** CDP binding a worker's fetch hook reports through (removed from the worker's global). */
export const WORKER_BINDING = '__tagstream_wfetch';

/** The script of inject/worker-hook.js for one worker, with the visit's navigator values. */
export function workerHook(env: WorkerEnv | null): string {
  return `${WORKER_HOOK_FUNCTION}(self,${JSON.stringify(env)},${JSON.stringify(WORKER_BINDING)})`;
}
