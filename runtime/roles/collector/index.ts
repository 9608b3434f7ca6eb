/** The collector role: GET /tag.js, POST /collect (docs/collector.md). */
export { buildCollectorApp, createCollectorRole, type CollectorOptions, type CollectorRole } from './server.ts';
export { CollectorSettingsSchema, type CollectorSettings } from './settings.ts';
export { collectBodySchema, type CollectBody } from './body.ts';
export { clientIp, trustedProxies, parseCidr, maskIp } from './client-ip.ts';
export { loadTag, type ServedTag } from './tag.ts';
