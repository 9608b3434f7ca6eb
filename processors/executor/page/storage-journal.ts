/**
 * The localStorage writes of one visit as the renderer reported them (CDP DOMStorage events, see
 * slot.ts), per origin: what the jar keeps for an origin whose storage cannot be read at the end
 * of the run (the page hung, a frame was gone, the read failed). docs/executor.md "Jar" says what
 * this can and cannot keep.
 *
 * Why DOMStorage events and not a binding the page calls: a page binding needs the Runtime domain
 * enabled on the tab, which a tag can detect (console argument previews), and the executor must
 * look like a visitor's browser. The events need nothing in the page, see property assignments
 * (`localStorage.k = v`) as well as setItem, and arrive once the task that wrote ends, so a later
 * hang cannot lose them. Pure apart from being fed.
 */
import type { Protocol } from 'puppeteer-core';
import type { StorageChange } from '../slot.ts';

/** Origins and keys kept at most (a page cannot grow the executor's memory without bound). */
const MAX_ORIGINS = 100;
const MAX_KEYS = 5000;

/** The origin of a DOMStorage storage id (a partitioned key is `<origin>/^0<top-level site>`). */
export function originOfStorage(id: Protocol.DOMStorage.StorageId): string | null {
  if (id.securityOrigin) return id.securityOrigin;
  if (!id.storageKey) return null;
  try {
    const origin = new URL(id.storageKey).origin;
    return origin === 'null' ? null : origin;
  } catch {
    return null;
  }
}

export class StorageJournal {
  /** origin → key → last value written, null once removed. */
  readonly #writes = new Map<string, Map<string, string | null>>();
  #keys = 0;
  /** `clear()` calls seen; never applied (see applyTo). */
  clears = 0;
  /** Changes not kept because a bound was reached. */
  overflow = 0;

  /** Feeds one change (install it as the slot's `storageChange`). */
  readonly record = (c: StorageChange): void => {
    if (!c.storageId.isLocalStorage) return;
    if (c.change === 'clear') {
      this.clears++;
      return;
    }
    const origin = originOfStorage(c.storageId);
    if (origin === null) return;
    let keys = this.#writes.get(origin);
    if (!keys) {
      if (this.#writes.size >= MAX_ORIGINS) {
        this.overflow++;
        return;
      }
      keys = new Map();
      this.#writes.set(origin, keys);
    }
    if (!keys.has(c.key)) {
      if (this.#keys >= MAX_KEYS) {
        this.overflow++;
        return;
      }
      this.#keys++;
    }
    keys.set(c.key, c.change === 'set' ? c.value : null);
  };

  /** Whether any write of `origin` was seen. */
  has(origin: string): boolean {
    return (this.#writes.get(origin)?.size ?? 0) > 0;
  }

  /**
   * `base` (the jar's entry for `origin`) with the writes seen applied: each key's last value,
   * removed keys removed. A `clear()` is not applied: the bootstrap and the frame script clear the
   * store before they put the jar's values back, and collect() clears it after reading it, so
   * applying clears would turn a read that failed into an empty store (the jar never loses values
   * because a read failed; a tag's own clear() is lost instead).
   */
  applyTo(origin: string, base: Readonly<Record<string, string>>): Record<string, string> {
    const out = new Map(Object.entries(base));
    for (const [k, v] of this.#writes.get(origin) ?? []) {
      if (v === null) out.delete(k);
      else out.set(k, v);
    }
    // fromEntries, not assignment: a key named "__proto__" stays a key.
    return Object.fromEntries(out);
  }
}
