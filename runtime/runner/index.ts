/** The stateful consumer-group runner: see runner.ts and docs/runner.md. */
export {
  StreamRunner,
  createRunner,
  type ChangelogBinding,
  type PartitionState,
  type PartitionStatus,
  type RecordContext,
  type RecordHandler,
  type RestoreProgress,
  type RunnerOptions,
  type RunnerState,
  type RunnerStatus,
} from './runner.ts';
export { RunnerSettingsSchema, type RunnerSettings, type RunnerSettingsInput } from './settings.ts';
export { RecordFailedError, RestoreFailedError, RunnerStateError } from '../../core/errors.ts';
export { KeyScheduler, type KeyedJob } from './key-scheduler.ts';
export { OffsetTracker } from './offset-tracker.ts';
export { RunnerMetrics } from './metrics.ts';
export { onShutdownSignals, type ShutdownOptions } from './shutdown.ts';
