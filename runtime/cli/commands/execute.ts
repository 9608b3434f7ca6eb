import type { Command } from 'commander';

// Placeholder until the browser executor lands (issue 4).
export function registerExecute(_program: Command): void {}
