import type { Command } from 'commander';

// Placeholder until the topology DSL lands (issue 3).
export function registerTopology(_program: Command): void {}
