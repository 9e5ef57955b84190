// The front end's unit tests (tests/*.test.ts, Node's own node:test): bundled by esbuild into a temporary
// folder, one file per test module, then run by `node --test`. No browser: pure modules and a fake widget model.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tests = readdirSync(join(root, 'tests')).filter(f => f.endsWith('.test.ts')).sort();
if (!tests.length) {
  console.error('no front-end unit tests found in js/tests');
  process.exit(1);
}
const out = mkdtempSync(join(tmpdir(), 'nonlin-explorer-js-tests-'));
try {
  await build({
    entryPoints: tests.map(f => join(root, 'tests', f)),
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ['node20'],
    logLevel: 'warning'
  });
  const files = tests.map(f => join(out, f.replace(/\.ts$/, '.mjs')));
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=dot', ...files], { stdio: 'inherit' });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(out, { recursive: true, force: true });
}
