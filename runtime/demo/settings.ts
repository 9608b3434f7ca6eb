/**
 * The `demo.*` settings (runtime/config.ts embeds them; `npm start` turns the demo on with
 * `run --demo`): a demo shop and a partner inbox on loopback, and demo partners whose real SDKs
 * (from npm) report to that inbox.
 */
import { z } from 'zod';

export const DemoSettingsSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Interface of the shop and the inbox: loopback (the partners' scripts and endpoints are there). */
    host: z.string().min(1).default('127.0.0.1'),
    /** The demo shop's port; 0 = a free one. */
    shopPort: z.number().int().min(0).max(65_535).default(8081),
    /** The partner inbox's port (serves the SDKs and receives what the dispatcher delivers); 0 = a free one. */
    inboxPort: z.number().int().min(0).max(65_535).default(8082),
  })
  .strict();

export type DemoSettings = z.infer<typeof DemoSettingsSchema>;
