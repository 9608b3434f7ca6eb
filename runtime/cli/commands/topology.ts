/**
 * `topology describe [--format text|json|mermaid] [--config file]`: prints the application's
 * topologies with the topic names the settings give (--config, TOPIC_* variables), as `run`
 * would build them. Building a topology is pure data: no broker, no browser.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../../core/errors.ts';
import { describeOnlyExecutor } from '../../../topology/app/processor.ts';
import { DESCRIBE_FORMATS, type DescribeFormat } from '../../../topology/describe.ts';
import { loadSettings } from '../../config.ts';
import { configuredProcessorTopology } from '../../roles/processor.ts';

function isFormat(value: string): value is DescribeFormat {
  return (DESCRIBE_FORMATS as readonly string[]).includes(value);
}

export function registerTopology(program: Command): void {
  const topology = program.command('topology').description('inspect the stream topology (no broker needed)');
  topology
    .command('describe')
    .description('print the application topology: Kafka Streams text format, JSON or Mermaid; topic names from the settings')
    .option('--format <format>', `output format: ${DESCRIBE_FORMATS.join('|')}`, 'text')
    .option('--config <file>', 'settings file (JSON); TOPIC_* environment variables override it')
    .action((options: { format: string; config?: string }) => {
      if (!isFormat(options.format)) {
        throw new InvalidInputError('--format', `must be one of ${DESCRIBE_FORMATS.join(', ')} (got "${options.format}")`);
      }
      const settings = loadSettings(options.config === undefined ? {} : { configFile: options.config });
      const description = configuredProcessorTopology(settings, describeOnlyExecutor).describe();
      process.stdout.write(description.format(options.format));
    });
}
