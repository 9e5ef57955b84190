// Bundle the anywidget front ends (ES modules + CSS) into ../nonlin_explorer/static with esbuild.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dev = process.argv.includes('--dev');

await build({
  entryPoints: [
    { in: join(root, 'src', 'network_view.ts'), out: 'network_view' },
    { in: join(root, 'style', 'network_view.css'), out: 'network_view' },
    { in: join(root, 'src', 'dashboard', 'dashboard.ts'), out: 'dashboard' },
    { in: join(root, 'style', 'dashboard.css'), out: 'dashboard' },
    { in: join(root, 'src', 'advantage', 'advantage.ts'), out: 'advantage' },
    { in: join(root, 'style', 'advantage.css'), out: 'advantage' },
    { in: join(root, 'src', 'compression', 'compression.ts'), out: 'compression' },
    { in: join(root, 'style', 'compression.css'), out: 'compression' }
  ],
  outdir: join(root, '..', 'nonlin_explorer', 'static'),
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  legalComments: 'none',
  logLevel: 'warning'
});
console.log('built nonlin_explorer/static (anywidget bundles)');
