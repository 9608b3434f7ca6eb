/**
 * Node observation: what each node outputs, as RxJS streams, for the test driver, metrics and a
 * live console. It stays off the hot path's cost: every node has a Tap whose `active` flag the
 * compiled graph reads once per record at that node; it is true only while someone subscribes, and
 * the Subject behind it exists only then (created on the first subscription, dropped with the last).
 */
import { Observable, Subject } from 'rxjs';
import type { RecordContext, RecordKey } from '../model.ts';

/** One value a node output (forwarded to its successors; for a sink, produced). */
export interface NodeEvent {
  readonly node: string;
  /** Where the input record came from (as RecordContext): its topic, partition and offset. */
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: RecordKey;
  readonly value: unknown;
}

/** A node's switch. Read by the compiled graph; written only by NodeObservers. */
export interface Tap {
  readonly node: string;
  /** Someone observes this node (or every node): build and emit a NodeEvent. */
  active: boolean;
  subject: Subject<NodeEvent> | undefined;
}

export class NodeObservers {
  private readonly taps = new Map<string, Tap>();
  /** Observers of every node (events$). */
  private all: Subject<NodeEvent> | undefined;
  private closed = false;

  /** The tap of `node`, created at compile time (a plain object: no Subject yet). */
  tap(node: string): Tap {
    let tap = this.taps.get(node);
    if (tap === undefined) {
      tap = { node, active: false, subject: undefined };
      this.taps.set(node, tap);
    }
    return tap;
  }

  /** Called by the graph only when `tap.active`: one event object, shared by every subscriber. */
  emit(tap: Tap, value: unknown, ctx: RecordContext): void {
    const event: NodeEvent = {
      node: tap.node,
      topic: ctx.topic,
      partition: ctx.partition,
      offset: ctx.offset,
      timestamp: ctx.timestamp,
      key: ctx.key,
      value,
    };
    tap.subject?.next(event);
    this.all?.next(event);
  }

  /** The outputs of one node. Cold until subscribed: subscribing is what switches the tap on. */
  observe(node: string): Observable<NodeEvent> {
    const tap = this.tap(node);
    return new Observable<NodeEvent>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      const subject = (tap.subject ??= new Subject<NodeEvent>());
      tap.active = true;
      const subscription = subject.subscribe(subscriber);
      return () => {
        subscription.unsubscribe();
        if (!subject.observed && tap.subject === subject) {
          tap.subject = undefined;
          this.refresh(tap);
        }
      };
    });
  }

  /** The outputs of every node, in the order they happen. */
  all$(): Observable<NodeEvent> {
    return new Observable<NodeEvent>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      let subject = this.all;
      if (subject === undefined) {
        subject = this.all = new Subject<NodeEvent>();
        for (const tap of this.taps.values()) tap.active = true;
      }
      const subscription = subject.subscribe(subscriber);
      const own = subject;
      return () => {
        subscription.unsubscribe();
        if (!own.observed && this.all === own) {
          this.all = undefined;
          for (const tap of this.taps.values()) this.refresh(tap);
        }
      };
    });
  }

  /** Nodes with a live Subject (the observed ones), and whether events$ has subscribers. */
  observed(): { nodes: string[]; all: boolean } {
    const nodes: string[] = [];
    for (const tap of this.taps.values()) if (tap.subject !== undefined) nodes.push(tap.node);
    return { nodes, all: this.all !== undefined };
  }

  /** Completes every subscriber and refuses new ones (engine close). */
  complete(): void {
    this.closed = true;
    const subjects = [...this.taps.values()].map((t) => t.subject);
    subjects.push(this.all);
    this.all = undefined;
    for (const tap of this.taps.values()) {
      tap.subject = undefined;
      tap.active = false;
    }
    for (const s of subjects) s?.complete();
  }

  private refresh(tap: Tap): void {
    tap.active = tap.subject !== undefined || this.all !== undefined;
  }
}
