import type { Command } from 'commander';

// Placeholder: `run`, `topics create`, `lag` (issue 2).
export function registerKafkaCommands(_program: Command): void {}
