import type { Middleware } from 'koa';
import type { Views } from '../views.ts';

/** The issuer's own address: a short page for people who land there (emails link to it). */
export function homePage(views: Views, productName: string): Middleware {
  return async (ctx, next) => {
    if (ctx.path !== '/' || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    views.render(ctx, 'home', { title: productName });
  };
}
