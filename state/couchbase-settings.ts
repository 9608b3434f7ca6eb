/**
 * The `couchbase.*` settings of the jar cache (state/couchbase.ts), apart from it so that
 * runtime/config.ts validates them without loading the Couchbase SDK's native module.
 */
import { z } from 'zod';

export const CouchbaseSettingsSchema = z
  .object({
    /** `couchbase://host[,host]` (or `couchbases://`); absent = no cache (the default). */
    connectionString: z.string().regex(/^couchbases?:\/\/\S+$/, 'must be a couchbase:// or couchbases:// connection string').optional(),
    bucket: z.string().min(1).default('tagstream'),
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    /** A jar document expires this long after its last write (Couchbase document expiry). */
    ttlSeconds: z.number().int().min(1).max(365 * 24 * 3600).default(7 * 24 * 3600),
    /** Writes waiting for Couchbase, one per visitor at most; past it the oldest upsert is dropped. */
    queueBound: z.number().int().min(1).max(1_000_000).default(10_000),
    /** SDK operations in flight at once. */
    concurrency: z.number().int().min(1).max(256).default(8),
    /** Budget of one key-value operation (and of the bootstrap). */
    timeoutMs: z.number().int().min(100).max(60_000).default(2500),
    /** Serve GET /jars/:userId on the processor's HTTP endpoint (it returns cookie values: keep that port internal). */
    httpReads: z.boolean().default(false),
  })
  .strict()
  .refine((s) => (s.username === undefined) === (s.password === undefined), { message: 'username and password go together', path: ['password'] })
  .refine((s) => !s.httpReads || s.connectionString !== undefined, { message: 'needs couchbase.connectionString (COUCHBASE_CONNECTION_STRING)', path: ['httpReads'] });

export type CouchbaseSettings = z.output<typeof CouchbaseSettingsSchema>;
export type ConfiguredCouchbaseSettings = CouchbaseSettings & { connectionString: string };

/** The settings with a connection string: the cache is on. */
export function couchbaseConfigured(settings: CouchbaseSettings): settings is ConfiguredCouchbaseSettings {
  return settings.connectionString !== undefined;
}
