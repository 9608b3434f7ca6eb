/**
 * The tag as served: tag/tag.js with its comments and indentation removed (the source stays
 * readable and linted), gzipped once at start, with a strong ETag of its content.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

export interface ServedTag {
  text: string;
  gzip: Buffer;
  etag: string;
}

/** Comment and whitespace stripping that is safe for tag.js (no comment markers inside its strings or regexes). */
export function compactScript(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('//'))
    .join('\n');
}

let cached: ServedTag | undefined;

export function loadTag(): ServedTag {
  if (cached !== undefined) return cached;
  const text = compactScript(readFileSync(new URL('./tag/tag.js', import.meta.url), 'utf8'));
  const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 22)}"`;
  cached = { text, gzip: gzipSync(text, { level: 9 }), etag };
  return cached;
}
