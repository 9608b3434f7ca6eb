import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecuteResult } from '../../processors/executor/index.ts';
import { DEFAULT_JAR_BUDGET } from '../../core/contracts/jar-budget.ts';
import { HOG_HTML, makeEvent, startFixtureServer, tagPartner, type FixtureServer } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('tagstream execute (the real CLI)', function () {
  this.timeout(120_000);
  let srv: FixtureServer;
  let dir: string;
  before(async () => {
    srv = await startFixtureServer();
    dir = await mkdtemp(join(tmpdir(), 'tagstream-execute-'));
  });
  after(async () => {
    await srv?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints exactly one JSON document, and its jar keeps the visitor id on the next view', async () => {
    const event = join(dir, 'event.json');
    const partners = join(dir, 'partners.json');
    const jarFile = join(dir, 'jar.json');
    await writeFile(event, JSON.stringify(makeEvent()));
    await writeFile(
      partners,
      JSON.stringify([
        tagPartner(srv, 'ids', 'cookie-id', { consent: 'analytics' }),
        tagPartner(srv, 'ads', 'ls-id', { consent: 'advertising' }),
      ]),
    );
    const first = await cli(['execute', '--event', event, '--partners', partners, '--allow-private-network']);
    expect(first.code, first.stderr).to.equal(0);
    const out = JSON.parse(first.stdout) as ExecuteResult;
    expect(Object.keys(out)).to.deep.equal(['requests', 'jar', 'trackers']);
    expect(out.trackers.map((t) => [t.partner, t.status])).to.deep.equal([
      ['ids', 'ok'],
      ['ads', 'skipped'],
    ]);
    expect(out.requests).to.have.length(1);
    const req = out.requests[0];
    expect(req).to.include({ partner: 'ids', method: 'GET', transport: 'image' });
    const id = new URL(req?.url ?? '').searchParams.get('id');
    // Logs went to stderr, as JSON lines.
    expect(first.stderr.trim().split('\n').every((l) => l.startsWith('{'))).to.equal(true);

    await writeFile(jarFile, JSON.stringify(out.jar));
    const second = await cli(['execute', '--event', event, '--partners', partners, '--jar', jarFile, '--allow-private-network']);
    expect(second.code, second.stderr).to.equal(0);
    const out2 = JSON.parse(second.stdout) as ExecuteResult;
    expect(new URL(out2.requests[0]?.url ?? '').searchParams.get('id')).to.equal(id);
    expect(new URL(out2.requests[0]?.url ?? '').searchParams.get('new')).to.equal('0');
  });

  it('prints a jar within the budget when a tag writes megabytes, keeping the other partners\' ids', async () => {
    const event = join(dir, 'hog-event.json');
    const partners = join(dir, 'hog-partners.json');
    await writeFile(event, JSON.stringify(makeEvent()));
    await writeFile(partners, JSON.stringify([{ id: 'hog', html: HOG_HTML }, tagPartner(srv, 'ids', 'cookie-id'), tagPartner(srv, 'ls', 'ls-id')]));
    const run = await cli(['execute', '--event', event, '--partners', partners, '--allow-private-network']);
    expect(run.code, run.stderr).to.equal(0);
    const out = JSON.parse(run.stdout) as ExecuteResult;
    // What the processor would publish as one record: within the budget.
    expect(Buffer.byteLength(JSON.stringify(out.jar), 'utf8')).to.be.at.most(DEFAULT_JAR_BUDGET.jarBytes);
    const id = new URL(out.requests.find((q) => q.url.includes('/cookie-id'))?.url ?? '').searchParams.get('id');
    expect(out.jar.cookies.find((c) => c.name === '_tid')?.value).to.equal(id);
    const ls = JSON.parse(out.requests.find((q) => q.url.includes('/ls-id'))?.body ?? '{}') as { id: string };
    expect(out.jar.localStorage['https://shop.example']).to.deep.equal({ ls_tid: ls.id });
    expect(out.trackers.map((t) => [t.partner, t.status])).to.deep.equal([
      ['hog', 'ok'],
      ['ids', 'ok'],
      ['ls', 'ok'],
    ]);
    expect(out.trackers[0]?.warnings).to.include('jar: dropped localStorage k0 on https://shop.example (1048578 bytes, originStorageBytes)');
    expect(out.trackers[1]?.warnings).to.equal(undefined);
    // One warn line for the run, with counts and bytes, never a value.
    const logged = run.stderr.split('\n').filter((l) => l.includes('jar over its budget'));
    expect(logged).to.have.length(1);
    expect(JSON.parse(logged[0] ?? '{}')).to.deep.include({ level: 40, dropped: 4, bytes: 4 * 1048578 });
    expect(run.stderr).not.to.contain('xxxxxxxx');
  });

  it('exits 2 with a one-line reason naming the field for invalid input', async () => {
    const event = join(dir, 'bad-event.json');
    const partners = join(dir, 'p.json');
    await writeFile(event, JSON.stringify({ ...makeEvent(), page: { url: 'ftp://x' } }));
    await writeFile(partners, JSON.stringify([{ id: 'a', html: '' }]));
    const bad = await cli(['execute', '--event', event, '--partners', partners]);
    expect(bad.code).to.equal(2);
    expect(bad.stdout).to.equal('');
    expect(bad.stderr).to.match(/event\.page\.url: must be an absolute http\(s\) URL/);

    await writeFile(join(dir, 'bad-partners.json'), JSON.stringify([{ id: 'a', html: '', timeoutMs: -1 }]));
    const badP = await cli(['execute', '--event', join(dir, 'bad-event.json').replace('bad-event', 'event'), '--partners', join(dir, 'bad-partners.json')]);
    expect(badP.code).to.equal(2);
    expect(badP.stderr).to.match(/partners\[0\]\.timeoutMs/);

    await writeFile(join(dir, 'broken.json'), '{ not json');
    const broken = await cli(['execute', '--event', join(dir, 'broken.json'), '--partners', partners]);
    expect(broken.code).to.equal(2);
    expect(broken.stderr).to.match(/--event: .*not valid JSON/);

    const missing = await cli(['execute', '--event', join(dir, 'nope.json'), '--partners', partners]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/--event: cannot read .*ENOENT/);
  });
});
