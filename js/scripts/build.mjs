// Build everything the Python package ships (idempotent: skipped when no input changed since the last
// build and every output exists; --force rebuilds). Run by `npm run build`, which both the
// hatch-jupyter-builder hook (pip install) and ./dev.sh call.
//   1. notebooks/*.ipynb -> src/generated/notebooks.ts   (demo notebooks bundled into the extension)
//      ../nonlin_explorer/ui/*.json -> src/generated/tables.ts (palettes, run settings: shared with Python)
//   2. tsc               -> lib/                         (the extension's modules)
//   3. esbuild           -> ../nonlin_explorer/static    (anywidget ES modules + CSS)
//   4. @jupyterlab/builder -> ../nonlin_explorer/labextension (the prebuilt JupyterLab extension)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(root, '..');
const force = process.argv.includes('--force');
const stampFile = join(root, 'lib', '.build-stamp');

// One version for Python and JS: nonlin_explorer/_version.py is the source, js/package.json mirrors it.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pyVersion = readFileSync(join(repo, 'nonlin_explorer', '_version.py'), 'utf8').match(
  /__version__\s*=\s*["']([^"']+)["']/
)?.[1];
if (pyVersion && pyVersion !== pkg.version) {
  console.error(`js/package.json version ${pkg.version} differs from nonlin_explorer/_version.py ${pyVersion}:` +
    ' set them equal.');
  process.exit(1);
}

function* files(dir) {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'generated' && name !== 'node_modules') yield* files(p);
    } else {
      yield p;
    }
  }
}

const inputs = [
  ...files(join(root, 'src')),
  ...files(join(root, 'style')),
  ...files(join(root, 'scripts')),
  ...['package.json', 'package-lock.json', 'tsconfig.json', 'install.json'].map(f => join(root, f)).filter(existsSync),
  ...[...files(join(repo, 'notebooks'))].filter(f => f.endsWith('.ipynb')),
  ...[...files(join(repo, 'nonlin_explorer', 'ui'))].filter(f => f.endsWith('.json'))
];
const hash = createHash('sha256');
for (const f of inputs) {
  hash.update(relative(repo, f)).update('\0').update(readFileSync(f)).update('\0');
}
const digest = hash.digest('hex');
const outputs = [
  join(repo, 'nonlin_explorer', 'static', 'network_view.js'),
  join(repo, 'nonlin_explorer', 'static', 'network_view.css'),
  join(repo, 'nonlin_explorer', 'static', 'dashboard.js'),
  join(repo, 'nonlin_explorer', 'static', 'dashboard.css'),
  join(repo, 'nonlin_explorer', 'labextension', 'package.json'),
  join(repo, 'nonlin_explorer', 'labextension', 'install.json'),
  join(repo, 'nonlin_explorer', 'labextension', 'static', 'style.js')
];
const upToDate = existsSync(stampFile) && readFileSync(stampFile, 'utf8') === digest && outputs.every(existsSync);
if (upToDate && !force) {
  console.log('front end up to date (nothing changed since the last build)');
  process.exit(0);
}

const step = (label, args) => {
  const t0 = Date.now();
  const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) {
    console.error(`front-end build failed at: ${label}`);
    process.exit(run.status ?? 1);
  }
  console.log(`  ${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
};
const tsc = join(dirname(createRequire(join(root, 'package.json')).resolve('typescript/package.json')), 'bin', 'tsc');
step('demo notebooks', [join(root, 'scripts', 'bundle-notebooks.mjs')]);
step('shared tables', [join(root, 'scripts', 'generate-tables.mjs')]);
step('tsc', [tsc, '-p', join(root, 'tsconfig.json')]);
step('anywidget bundles (esbuild)', [join(root, 'scripts', 'build-widget.mjs')]);
step('labextension (@jupyterlab/builder)', [join(root, 'scripts', 'build-labextension.mjs')]);
// install.json: `jupyter labextension list` then says the extension comes from the Python package.
copyFileSync(join(root, 'install.json'), join(repo, 'nonlin_explorer', 'labextension', 'install.json'));
const missing = outputs.filter(f => !existsSync(f));
if (missing.length) {
  console.error(`front-end build did not produce: ${missing.map(f => relative(repo, f)).join(', ')}`);
  process.exit(1);
}
mkdirSync(dirname(stampFile), { recursive: true });
writeFileSync(stampFile, digest);

