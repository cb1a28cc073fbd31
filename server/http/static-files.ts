import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Middleware } from 'koa';

const TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
};

/** Serves views/static/* from memory under /static/, read once at start. */
export function staticFiles(dir: string): Middleware {
  const files = new Map(
    readdirSync(dir).map((name) => [
      `/static/${name}`,
      {
        body: readFileSync(join(dir, name)),
        type: TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream',
      },
    ]),
  );
  return async (ctx, next) => {
    const file = ctx.method === 'GET' || ctx.method === 'HEAD' ? files.get(ctx.path) : undefined;
    if (!file) return next();
    ctx.type = file.type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = file.body;
  };
}
