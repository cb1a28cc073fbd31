import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Middleware } from 'koa';

const TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
};

const require = createRequire(import.meta.url);

/**
 * Browser libraries served from their installed package (runtime dependencies, so in the image
 * too): the page gets exactly the version the lock file names, with nothing copied by hand.
 */
export const VENDOR_FILES: Record<string, string> = {
  // The UMD bundle (global SimpleWebAuthnBrowser); the package's exports do not name it.
  'simplewebauthn-browser.js': join(
    dirname(require.resolve('@simplewebauthn/browser')),
    '../dist/bundle/index.umd.min.js',
  ),
};

/** Serves views/static/* and VENDOR_FILES (under /static/vendor/) from memory, read once at start. */
export function staticFiles(dir: string): Middleware {
  const entry = (path: string) => ({
    body: readFileSync(path),
    type: TYPES[path.split('.').pop() ?? ''] ?? 'application/octet-stream',
  });
  const files = new Map<string, { body: Buffer; type: string }>([
    ...readdirSync(dir, { withFileTypes: true })
      .filter((f) => f.isFile())
      .map((f) => [`/static/${f.name}`, entry(join(dir, f.name))] as const),
    ...Object.entries(VENDOR_FILES).map(
      ([name, path]) => [`/static/vendor/${name}`, entry(path)] as const,
    ),
  ]);
  return async (ctx, next) => {
    const file = ctx.method === 'GET' || ctx.method === 'HEAD' ? files.get(ctx.path) : undefined;
    if (!file) return next();
    ctx.type = file.type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = file.body;
  };
}
