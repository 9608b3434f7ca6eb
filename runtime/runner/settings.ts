import { z } from 'zod';

/**
 * Tunables of the consumer-group runner, validated like every other setting (runtime/config.ts can
 * embed this schema as `runner`). Documented in docs/runner.md ("Settings").
 */
export const RunnerSettingsSchema = z
  .object({
    /** Records processed at once, across keys and partitions (one key never runs twice at once). */
    concurrency: z.number().int().min(1).max(10_000).default(16),
    /** Fetching pauses when in-flight + buffered records reach this bound. */
    maxBuffered: z.number().int().min(1).max(1_000_000).default(1000),
    /** Fetching resumes when in-flight + buffered drops to this; default maxBuffered / 2. */
    resumeBelow: z.number().int().min(0).optional(),
    /**
     * How often watermarks are committed. 0 = after every completion batch (coalesced, one commit
     * in flight at a time). Default: 0 when the client cannot await revocation (platformatic), so a
     * rebalance replays little; 1000 otherwise.
     */
    commitIntervalMs: z.number().int().min(0).max(600_000).optional(),
    /** On revocation, how long in-flight records of the revoked partitions may run on. */
    revokeTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
    /** stop() without an argument: how long in-flight records may run on. */
    shutdownTimeoutMs: z.number().int().min(0).max(600_000).default(30_000),
    /** Where a partition without a committed offset starts. */
    autoOffsetReset: z.enum(['earliest', 'latest']).default('earliest'),
    /** Require `cleanup.policy=compact` on the changelog topic at start (Kafka Streams does). */
    requireCompactedChangelog: z.boolean().default(true),
    /**
     * Upper bound of one fetch, in bytes (the client's maxBytes). Records already delivered cannot be
     * recalled, so the buffer bound is maxBuffered plus one delivery: keep deliveries small when
     * records are large or steps slow.
     */
    fetchMaxBytes: z.number().int().min(1).max(1_073_741_824).optional(),
    sessionTimeoutMs: z.number().int().min(1000).max(3_600_000).optional(),
    heartbeatIntervalMs: z.number().int().min(100).max(3_600_000).optional(),
    rebalanceTimeoutMs: z.number().int().min(1000).max(3_600_000).optional(),
    /**
     * Static group membership (KIP-345; platformatic client only): this member's stable name in the
     * group. Set from the top-level `instanceId` setting (INSTANCE_ID, --instance-id) when absent.
     */
    /**
     * How long the produce of a record's outputs keeps being retried (backoff up to 5 s) while no
     * broker is reachable (a broker restart, a network cut), before the runner stops. The record is
     * not committed meanwhile; 0 = stop at the first such failure.
     */
    brokerRetryMs: z
      .number()
      .int()
      .min(0)
      .max(3_600_000)
      .default(300_000)
      .describe('how long a record\'s produce is retried while no broker is reachable (a broker restart) before the runner stops; the record stays uncommitted; 0 = stop at once'),
    groupInstanceId: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'letters, digits, . _ - (at most 249)').optional(),
  })
  .strict()
  .refine((s) => s.resumeBelow === undefined || s.resumeBelow < s.maxBuffered, {
    message: 'resumeBelow must be lower than maxBuffered',
    path: ['resumeBelow'],
  });

export type RunnerSettings = z.infer<typeof RunnerSettingsSchema>;
export type RunnerSettingsInput = z.input<typeof RunnerSettingsSchema>;
