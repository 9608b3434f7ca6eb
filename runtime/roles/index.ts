/** The roles `run` composes. */
export { startProcessor, createProcessorRole, configuredProcessorTopology, type ProcessorHandle, type ProcessorOptions, type ProcessorRoleOptions } from './processor.ts';
export { poolExecutor, type ExecutorPool } from './executor-adapter.ts';
export { loadPartners } from './partners.ts';
export { combineReadiness, READY, type Readiness, type Role, type RoleName } from './role.ts';
export { createCollectorRole, buildCollectorApp, type CollectorOptions, type CollectorRole } from './collector/index.ts';
export { startDispatcher, createDispatcherRole, configuredDispatcherTopology, type DispatcherHandle } from './dispatcher.ts';
export { DispatcherSettingsSchema, type DispatcherSettings } from './dispatcher-settings.ts';
