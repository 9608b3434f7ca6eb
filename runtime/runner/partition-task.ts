/**
 * One task per assigned partition number (partition p of every source topic): its offsets per
 * topic, its restore, the records held while it restores, and the abort that gives up its records.
 */
import type { ConsumedRecord, PartitionReader } from '../kafka/types.ts';
import type { KeyedJob } from './key-scheduler.ts';
import { OffsetTracker } from './offset-tracker.ts';
import type { PartitionState, RestoreProgress } from './types.ts';

export class PartitionTask {
  state: PartitionState;
  /** Offsets per source topic of this partition (one task reads partition p of every topic). */
  readonly trackers = new Map<string, OffsetTracker>();
  /** The last offset committed per source topic (-1 none). */
  readonly committedBy = new Map<string, number>();
  readonly abort = new AbortController();
  /** Records received while restoring; they enter the scheduler once the state is restored. */
  held: ConsumedRecord[] = [];
  restore: RestoreProgress | undefined;
  reader: PartitionReader | undefined;
  /** Settles when the restore (and activation) is over, whatever its outcome. */
  restored: Promise<void> = Promise.resolve();
  /**
   * Records of this partition being processed, each with the function that gives it up. One abort
   * listener per partition calls them all: cheaper than two listeners per record on the signal.
   */
  readonly running = new Set<() => void>();

  constructor(readonly partition: number, state: PartitionState) {
    this.state = state;
    this.tracker = this.trackerOf.bind(this);
    this.abort.signal.addEventListener(
      'abort',
      () => {
        for (const giveUp of [...this.running]) giveUp();
      },
      { once: true },
    );
  }

  readonly tracker: (topic: string) => OffsetTracker;

  private trackerOf(topic: string): OffsetTracker {
    let tracker = this.trackers.get(topic);
    if (tracker === undefined) {
      tracker = new OffsetTracker();
      this.trackers.set(topic, tracker);
    }
    return tracker;
  }

  committed(topic: string): number {
    return this.committedBy.get(topic) ?? -1;
  }
}

export interface RecordJob extends KeyedJob {
  readonly task: PartitionTask;
  readonly record: ConsumedRecord;
}
