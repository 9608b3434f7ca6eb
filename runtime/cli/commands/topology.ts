/**
 * `topology describe [--format text|json|mermaid]`: prints the application topology with the
 * default topic names. Building a topology is pure data, so this needs no broker and no browser.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../../core/errors.ts';
import { applicationTopology, describeOnlyExecutor } from '../../../topology/application.ts';
import { DESCRIBE_FORMATS, type DescribeFormat } from '../../../topology/describe.ts';

function isFormat(value: string): value is DescribeFormat {
  return (DESCRIBE_FORMATS as readonly string[]).includes(value);
}

export function registerTopology(program: Command): void {
  const topology = program.command('topology').description('inspect the stream topology (no broker needed)');
  topology
    .command('describe')
    .description('print the application topology: Kafka Streams text format, JSON or Mermaid')
    .option('--format <format>', `output format: ${DESCRIBE_FORMATS.join('|')}`, 'text')
    .action((options: { format: string }) => {
      if (!isFormat(options.format)) {
        throw new InvalidInputError('--format', `must be one of ${DESCRIBE_FORMATS.join(', ')} (got "${options.format}")`);
      }
      const description = applicationTopology({ executor: describeOnlyExecutor }).describe();
      process.stdout.write(description.format(options.format));
    });
}
