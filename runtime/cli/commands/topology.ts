/**
 * `topology describe [--app processor|dispatcher|all] [--format text|json|mermaid] [--config file]`:
 * prints the application's topologies with the topic names the settings give (--config, TOPIC_*
 * variables), as `run` would build them. Building a topology is pure data: no broker, no browser.
 * With both apps, text and Mermaid print one after the other under a `# <app>` line, JSON is
 * `{ "processor": …, "dispatcher": … }`.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../../core/errors.ts';
import { describeOnlyExecutor } from '../../../topology/app/processor.ts';
import { DESCRIBE_FORMATS, type DescribeFormat } from '../../../topology/describe.ts';
import { loadSettings } from '../../config.ts';
import { configuredProcessorTopology } from '../../roles/processor.ts';
import { configuredDispatcherTopology } from '../../roles/dispatcher.ts';
import { dispatcherTopics, retryGroupOf } from '../../roles/dispatcher-settings.ts';
import { describeOnlyDeliver } from '../../../topology/app/dispatcher.ts';

const APPS = ['processor', 'dispatcher', 'all'] as const;
type App = (typeof APPS)[number];

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
    .option('--app <app>', `which topology: ${APPS.join('|')}`, 'all')
    .action((options: { format: string; config?: string; app: string }) => {
      if (!isFormat(options.format)) {
        throw new InvalidInputError('--format', `must be one of ${DESCRIBE_FORMATS.join(', ')} (got "${options.format}")`);
      }
      if (!(APPS as readonly string[]).includes(options.app)) throw new InvalidInputError('--app', `must be one of ${APPS.join(', ')} (got "${options.app}")`);
      const app = options.app as App;
      const settings = loadSettings(options.config === undefined ? {} : { configFile: options.config });
      const descriptions = {
        processor: () => configuredProcessorTopology(settings, describeOnlyExecutor).describe(),
        dispatcher: () => configuredDispatcherTopology(settings, settings.dispatcher, describeOnlyDeliver).describe(),
      };
      const comment = options.format === 'mermaid' ? '%%' : '#';
      // Not a topology (one consumer that only waits and forwards), but part of the dispatcher's data flow.
      const retryConsumer = (): string => {
        const topics = dispatcherTopics(settings.topics.requests, settings.dispatcher);
        return `${comment} dispatcher retry consumer (group ${retryGroupOf(settings.groups.dispatcher)}): ${topics.retry} → waits until each record's notBefore → ${settings.topics.requests}\n`;
      };
      if (app !== 'all') {
        process.stdout.write(descriptions[app]().format(options.format) + (app === 'dispatcher' && options.format !== 'json' ? retryConsumer() : ''));
        return;
      }
      if (options.format === 'json') {
        process.stdout.write(`${JSON.stringify({ processor: descriptions.processor().toJSON(), dispatcher: descriptions.dispatcher().toJSON() }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${comment} processor\n${descriptions.processor().format(options.format)}\n${comment} dispatcher\n${descriptions.dispatcher().format(options.format)}${retryConsumer()}`);
    });
}
