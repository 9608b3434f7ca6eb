/**
 * The instance name (INSTANCE_ID, `run --instance-id`) and static group membership, at the edge:
 * it becomes each group's group.instance.id on platformatic, is refused with kafkajs (which has no
 * such option) by name, and a bad name is refused by name. The behaviour on a real broker (a
 * restart resumes at once, a loss is detected after the session timeout) is in test/e2e.
 */
import { expect } from 'chai';
import { InvalidInputError, KafkaClientError } from '../../core/errors.ts';
import { loadSettings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';

describe('instanceId: static group membership (runtime/config.ts)', () => {
  it('INSTANCE_ID becomes the runner\'s groupInstanceId; absent, members are dynamic', () => {
    expect(loadSettings({ env: { INSTANCE_ID: 'proc-1' } }).runner.groupInstanceId).to.equal('proc-1');
    expect(loadSettings({ env: {}, flags: { instanceId: 'proc-2' } }).runner.groupInstanceId).to.equal('proc-2');
    expect(loadSettings({ env: {} }).runner.groupInstanceId).to.equal(undefined);
  });

  it('refuses it with the kafkajs client, naming the setting', () => {
    const attempt = (): unknown => loadSettings({ env: { INSTANCE_ID: 'proc-1', KAFKA_CLIENT: 'kafkajs' } });
    expect(attempt).to.throw(InvalidInputError, /^instanceId \(INSTANCE_ID\): static group membership needs the platformatic client: kafkajs has no group instance id/);
  });

  it('refuses a name Kafka would not take, naming the variable', () => {
    expect(() => loadSettings({ env: { INSTANCE_ID: 'has space' } })).to.throw(InvalidInputError, /instanceId \(INSTANCE_ID\)/);
  });

  it('the kafkajs adapter refuses groupInstanceId too (the API below the settings)', async () => {
    const client = createKafkaClient('kafkajs', { brokers: ['127.0.0.1:1'], clientId: 't' });
    try {
      expect(() => client.consumer({ groupId: 'g', topics: ['t'], groupInstanceId: 'x' })).to.throw(KafkaClientError, /not supported by the kafkajs client/);
    } finally {
      await client.close();
    }
  });
});
