/**
 * No Docker engine runs here, so docker/ is checked by what can be checked: the compose file
 * parses, every file it builds from or mounts exists, and every command it runs is one the CLI
 * accepts (same parser as the image's entry point).
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { buildProgram } from '../../runtime/cli/main.ts';

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  volumes?: string[];
  environment?: Record<string, string | number>;
}

const composePath = resolve('docker/compose.yaml');
const compose = parse(readFileSync(composePath, 'utf8')) as { services: Record<string, ComposeService> };

describe('docker/compose.yaml', () => {
  it('parses and names its services', () => {
    expect(Object.keys(compose.services)).to.include.members(['kafka', 'topics', 'processor']);
  });

  it('builds from the Dockerfile and mounts files that exist', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (svc.build) {
        const context = resolve(dirname(composePath), svc.build.context);
        expect(existsSync(join(context, svc.build.dockerfile)), `${name}: dockerfile`).to.equal(true);
      }
      for (const volume of svc.volumes ?? []) {
        const host = volume.split(':')[0] ?? '';
        expect(existsSync(resolve(dirname(composePath), host)), `${name}: volume ${host}`).to.equal(true);
      }
    }
  });

  it('runs only commands and options the CLI knows', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (!svc.command || svc.image) continue;
      const program = buildProgram();
      // Resolve the sub-command chain as commander would, without running an action.
      let cmd = program;
      const args = [...svc.command];
      while (args.length > 0) {
        const next = cmd.commands.find((c) => c.name() === args[0]);
        if (!next) break;
        cmd = next;
        args.shift();
      }
      expect(cmd, `${name}: ${svc.command.join(' ')}`).to.not.equal(program);
      for (const arg of args.filter((a) => a.startsWith('--'))) {
        expect(cmd.options.some((o) => o.long === arg), `${name}: option ${arg} of ${cmd.name()}`).to.equal(true);
      }
    }
  });

  it('the image copies every source folder the TypeScript build includes', () => {
    const dockerfile = readFileSync('docker/Dockerfile', 'utf8');
    const tsconfig = JSON.parse(readFileSync('tsconfig.json', 'utf8')) as { include: string[] };
    for (const folder of tsconfig.include) {
      expect(dockerfile, `COPY ${folder}`).to.match(new RegExp(`^COPY ${folder} ${folder}$`, 'm'));
    }
  });
});
