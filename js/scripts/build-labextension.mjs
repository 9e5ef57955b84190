// Build the prebuilt JupyterLab extension into ../nonlin_explorer/labextension with @jupyterlab/builder,
// against the core metadata of @jupyterlab/core-meta (no network, no Python needed: the builder expects
// a folder whose package.json is the core metadata).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const require = createRequire(join(root, 'package.json'));
const coreMeta = require.resolve('@jupyterlab/core-meta/core.package.json');
const builder = join(dirname(require.resolve('@jupyterlab/builder/package.json')), 'lib', 'build-labextension.js');
const dev = process.argv.includes('--dev');

const core = mkdtempSync(join(tmpdir(), 'nonlin-explorer-core-'));
try {
  copyFileSync(coreMeta, join(core, 'package.json'));
  const args = [builder, '--core-path', core, ...(dev ? ['--development', '--source-map'] : []), root];
  const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) {
    process.exit(run.status ?? 1);
  }
} finally {
  rmSync(core, { recursive: true, force: true });
}
console.log('built nonlin_explorer/labextension');
