import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Context } from 'koa';

// views/ sits beside server/ both in the source tree and in dist/ (the build copies it).
export const VIEWS_DIR = fileURLToPath(new URL('../views', import.meta.url));

/** Engine settings shared by pages and mail: `<%= %>` HTML-escapes, `<%~ %>` prints as is. */
export const ETA_SETTINGS = Object.freeze({
  views: VIEWS_DIR,
  cache: true,
  autoEscape: true,
  autoTrim: false,
});

export function createViews(productName = 'Latchkey') {
  const eta = new Eta(ETA_SETTINGS);
  return {
    /** Renders a page inside layout.eta; `title` names the page for the <title> and the heading. */
    render(
      ctx: Context,
      page: string,
      data: Record<string, unknown> & { title: string },
      status = 200,
    ) {
      ctx.status = status;
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = eta.render(page, { productName, ...data });
    },
  };
}

export type Views = ReturnType<typeof createViews>;
