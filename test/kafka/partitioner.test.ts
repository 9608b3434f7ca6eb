import { expect } from 'chai';
import { murmur2, partitionForKey, toPositive } from '../../runtime/kafka/partitioner.ts';

describe('kafka partitioner (murmur2 like the Java client)', () => {
  // Expected hashes published by other implementations that are tested against Kafka's Java client:
  // Apache Kafka UtilsTest.testMurmur2, librdkafka's rdmurmur2.c unit test, kafkajs' default murmur2 spec.
  const vectors: Array<[string, number]> = [
    // Apache Kafka clients UtilsTest
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
    // librdkafka
    ['kafka', -798503068],
    ['giberish123456789', -1890243828],
    ['1234', -1614185708],
    ['234', -406844982],
    ['34', -2026295078],
    ['4', 1514888353],
    ['PreAmbleWillBeRemoved,ThePrePartThatIs', 2017611548],
    ['', 275646681],
    // kafkajs (default partitioner)
    ['0', 971027396],
    ['1', -1993445489],
    ['128', -326012175],
    ['2187', -1508407203],
    ['10000000', -1830336757],
    ['170859375', -1658323481],
  ];

  for (const [input, expected] of vectors) {
    it(`murmur2(${JSON.stringify(input)}) = ${expected}`, () => {
      expect(murmur2(Buffer.from(input, 'utf8'))).to.equal(expected);
    });
  }

  it('hashes bytes, not characters (non-ASCII keys are UTF-8, bytes ≥ 0x80 are unsigned)', () => {
    const bytes = Buffer.from([0xff, 0x80, 0x00, 0x7f, 0xc3]);
    // Same hash whichever way the bytes arrive; the string form is UTF-8 encoded first.
    expect(murmur2(bytes)).to.equal(murmur2(Buffer.from(bytes)));
    expect(partitionForKey('é', 7)).to.equal(toPositive(murmur2(Buffer.from([0xc3, 0xa9]))) % 7);
  });

  it('toPositive clears the sign bit like Utils.toPositive (not Math.abs)', () => {
    expect(toPositive(-1)).to.equal(0x7fffffff);
    expect(toPositive(-2147483648)).to.equal(0);
    expect(toPositive(5)).to.equal(5);
  });

  it('partitionForKey = toPositive(murmur2(key)) % partitions', () => {
    // Hand-computed: toPositive(-790332482) = 1357151166; Math.abs would give partition 2 of 12.
    expect(partitionForKey('foobar', 12)).to.equal(6);
    expect(partitionForKey('foobar', 3)).to.equal(0);
    expect(partitionForKey('21', 24)).to.equal(12);
    expect(partitionForKey('kafka', 3)).to.equal(1);
    expect(partitionForKey('abc', 12)).to.equal(3);
    expect(partitionForKey(Buffer.from('0'), 24)).to.equal(20);
    expect(partitionForKey('', 12)).to.equal(9);
    expect(partitionForKey('anything', 1)).to.equal(0);
  });

  it('rejects a partition count that is not a positive integer', () => {
    expect(() => partitionForKey('k', 0)).to.throw(RangeError);
    expect(() => partitionForKey('k', 1.5)).to.throw(RangeError);
  });
});
