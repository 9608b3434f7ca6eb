/**
 * A dispatcher in a child process, for the crash test (kill -9): its whole configuration comes in
 * DISPATCHER_CHILD as JSON; it prints "ready" once it runs.
 */
import { Registry } from 'prom-client';
import { parsePartners, type PartnerConfigInput } from '../../core/contracts/index.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { startDispatcher, type DispatcherSettingsInput } from '../../runtime/roles/dispatcher.ts';
import { dispatcherSettings, type DispatcherTopics } from './setup.ts';

interface ChildConfig {
  brokers: string[];
  topics: DispatcherTopics;
  group: string;
  partners: PartnerConfigInput[];
  dispatcher: DispatcherSettingsInput;
  ca: string;
}

const config = JSON.parse(process.env.DISPATCHER_CHILD ?? '{}') as ChildConfig;
const client = createKafkaClient('platformatic', { brokers: config.brokers, clientId: 'dispatcher-crash-child' });
const d = await startDispatcher({ settings: dispatcherSettings(config.topics, config.group), dispatcher: config.dispatcher, client, partners: parsePartners(config.partners), ca: config.ca, registry: new Registry() });
process.stdout.write('ready\n');
await d.closed;
