/**
 * Access to the real Kafka broker that the mocha root hook (test/hooks/root.ts) starts once per run.
 * Integration suites call `realBroker()` in their `before` hook; it is the bootstrap list of a
 * single-node KRaft broker on 127.0.0.1 (Apache Kafka 4.x from Maven Central).
 */
export interface RealBroker {
  brokers: string[];
  version: string;
}

let current: RealBroker | undefined;

export function setRealBroker(broker: RealBroker | undefined): void {
  current = broker;
}

export function realBroker(): RealBroker {
  if (!current) {
    throw new Error('the real Kafka broker is not running: test/hooks/root.ts should have started it');
  }
  return current;
}

/** A topic name no other test uses (tests share one broker). */
export function uniqueTopic(prefix = 't'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
