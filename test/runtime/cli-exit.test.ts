/**
 * Every command prints one document on stdout and exits: the exit must not cut the document when
 * the reader of the pipe is slower than the writer (`execute` prints megabytes for a big page).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs a script that prints `bytes` of JSON then exits with `exit`; reads its stdout only after a pause. */
function slowlyRead(exit: 'exitAfterFlush' | 'process.exit', bytes: number): Promise<{ code: number | null; out: string }> {
  const script = [
    "import { exitAfterFlush } from './runtime/cli/main.ts';",
    `process.stdout.write(JSON.stringify({ value: 'x'.repeat(${bytes}) }) + '\\n');`,
    exit === 'exitAfterFlush' ? 'exitAfterFlush(0);' : 'process.exit(0);',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.pause();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.stdout.resume();
    }, 500);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: Buffer.concat(chunks).toString('utf8') });
    });
  });
}

describe('CLI: output is flushed before the process exits', function () {
  this.timeout(30_000);

  it('an 8 MB document read slowly through a pipe arrives whole, exit code 0', async () => {
    const { code, out } = await slowlyRead('exitAfterFlush', 8_000_000);
    expect(code).to.equal(0);
    expect(out.length).to.equal(8_000_000 + '{"value":""}\n'.length);
    expect((JSON.parse(out) as { value: string }).value).to.have.length(8_000_000);
  });
});
