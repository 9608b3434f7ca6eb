/**
 * The demo partners' SDKs: the browser bundles that @snowplow/browser-tracker, posthog-js and
 * @plausible-analytics/tracker publish on npm (devDependencies), served as-is by the partner inbox
 * the way each vendor's CDN serves them.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InvalidInputError } from '../../core/errors.ts';

export interface Sdk {
  /** The demo partner it belongs to, and the path the inbox serves it at. */
  partner: 'snowplow' | 'posthog' | 'plausible';
  path: string;
  /** Package and file, for the inbox page. */
  source: string;
  version: string;
  body: Buffer;
}

const require = createRequire(import.meta.url);

/** Reads the three bundles; a clear error when the devDependencies are not installed. */
export function loadSdks(): Sdk[] {
  return [
    sdk('snowplow', '@snowplow/browser-tracker', (main) => join(dirname(main), 'index.umd.min.js'), '/sdk/snowplow/sp.js'),
    sdk('posthog', 'posthog-js', (main) => join(dirname(main), 'array.js'), '/sdk/posthog/array.js'),
    sdk('plausible', '@plausible-analytics/tracker', (main) => main, '/sdk/plausible/plausible.js'),
  ];
}

function sdk(partner: Sdk['partner'], pkg: string, file: (main: string) => string, path: string): Sdk {
  let main: string;
  try {
    main = require.resolve(pkg);
  } catch {
    throw new InvalidInputError('--demo', `the demo partners need the npm package ${pkg} (a devDependency): run npm ci`);
  }
  const at = file(main);
  return { partner, path, source: `${pkg}/${at.slice(at.lastIndexOf(`${pkg}/`) + pkg.length + 1)}`, version: packageVersion(main, pkg), body: readFileSync(at) };
}

function packageVersion(main: string, pkg: string): string {
  const root = main.slice(0, main.lastIndexOf(`${pkg}/`) + pkg.length);
  try {
    return String((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown }).version ?? '?');
  } catch {
    return '?';
  }
}
