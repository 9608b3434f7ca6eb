/**
 * The `console.*` settings (runtime/config.ts embeds them; the README documents each). The console
 * shows visitors' context and partners' cookie values: it listens on loopback unless an operator
 * says otherwise, and it is off outside the embedded default unless turned on.
 */
import { z } from 'zod';

export const ConsoleSettingsSchema = z
  .object({
    /** Absent = on with the embedded broker (and with `--demo`), off with a cluster. */
    enabled: z.boolean().optional(),
    /** Interface of the console's port; loopback, so a visitor's data never leaves the machine by default. */
    host: z.string().min(1).default('127.0.0.1'),
    /** Its own port (not the metrics port, which listens on every interface); 0 = a free one, printed. */
    port: z.number().int().min(0).max(65_535).default(9465),
    /** Events kept (a ring: the oldest is dropped); each holds its captured requests and jars. */
    bufferSize: z.number().int().min(1).max(100_000).default(300),
    /** Minutes of per-partner counters kept. */
    counterMinutes: z.number().int().min(1).max(1440).default(15),
  })
  .strict();

export type ConsoleSettings = z.infer<typeof ConsoleSettingsSchema>;

/** Whether `run` starts the console: explicit setting, else the embedded default or the demo. */
export function consoleEnabled(settings: ConsoleSettings, context: { embedded: boolean; demo: boolean }): boolean {
  return settings.enabled ?? (context.embedded || context.demo);
}
