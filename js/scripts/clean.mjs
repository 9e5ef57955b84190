// Remove every build output (the next build starts from scratch).
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const p of ['lib', 'src/generated', '../nonlin_explorer/static', '../nonlin_explorer/labextension']) {
  rmSync(join(root, p), { recursive: true, force: true });
}
