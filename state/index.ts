export type { KeyValueStore, StoreProvider } from './store.ts';
export { InMemoryKeyValueStore, InMemoryStoreProvider } from './memory.ts';
export { LmdbKeyValueStore, LmdbStoreProvider, openLmdbStore, type LmdbStoreOptions, type LmdbStoreProviderOptions } from './lmdb.ts';
export {
  restoreStores,
  restoreProgress$,
  changelogRestorer,
  type RestoreOptions,
  type RestorePartition,
  type RestoreProgress,
  type ChangelogRestorer,
  type ChangelogRestorerOptions,
} from './restore.ts';
