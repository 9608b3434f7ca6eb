#!/usr/bin/env node
/**
 * The operators' CLI (DESIGN.md "Commands"). Each command lives in ./commands/<name>.ts and
 * registers itself on the program; bad input exits 2 with a one-line reason on stderr.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerExecute } from './commands/execute.ts';
import { registerTopology } from './commands/topology.ts';
import { registerKafkaCommands } from './commands/kafka.ts';
import { registerLag } from './commands/lag.ts';
import { registerErase } from './commands/erase.ts';
import { registerDlq } from './commands/dlq.ts';
import { registerReplay } from './commands/replay.ts';
import { registerRun } from './commands/run.ts';
import { TagstreamError } from '../../core/errors.ts';

export function buildProgram(): Command {
  const program = new Command('tagstream')
    .description('Server-side execution of third-party tracking tags on Kafka')
    .showHelpAfterError(false)
    .exitOverride();
  registerRun(program);
  registerKafkaCommands(program);
  registerLag(program);
  registerErase(program);
  registerDlq(program);
  registerReplay(program);
  registerTopology(program);
  registerExecute(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exitCode 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof TagstreamError && err.code === 'ERR_INVALID_INPUT') {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${message}\n`);
    return 1;
  }
}

// Run when executed directly, also through the npm `bin` symlink (argv[1] is then the link).
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}
const isEntry = isEntryPoint();
if (isEntry) {
  main(process.argv).then(
    (code) => exitAfterFlush(code),
    (err: unknown) => {
      process.stderr.write(`fatal: ${String(err)}\n`);
      exitAfterFlush(1);
    },
  );
}

/**
 * Exits once stdout and stderr have handed everything to the OS. A command's output is one
 * document (execute prints megabytes for a large page): process.exit() right after write() drops
 * what is still queued when the reader of the pipe is slower than us.
 */
export function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
