import Router from '@koa/router';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { ownRoutes } from '../../server/http/own-routes.ts';

// Our routers are tried only for paths under their first segments; the rest (the protocol's)
// go straight on to what follows, as if the routers were not there.
describe('our routes in front of the provider', () => {
  const app = () => {
    const pages = new Router({ prefix: '/account' });
    pages.get('/profile', (ctx) => (ctx.body = 'profile'));
    const health = new Router();
    health.get('/healthz', (ctx) => (ctx.body = 'ok'));
    const koa = new Koa();
    koa.use(ownRoutes([pages, health]));
    koa.use((ctx) => (ctx.body = `provider ${ctx.path}`));
    return koa.callback();
  };
  const get = async (path: string) => {
    const { createServer } = await import('node:http');
    const server = createServer(app()).listen(0);
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as { port: number };
      return await (await fetch(`http://127.0.0.1:${port}${path}`)).text();
    } finally {
      server.close();
    }
  };

  it('answers its routes, in any case, and passes on what none of them has', async () => {
    expect(await get('/account/profile')).toBe('profile');
    expect(await get('/ACCOUNT/Profile')).toBe('profile');
    expect(await get('/healthz')).toBe('ok');
    expect(await get('/account/nothing-here')).toBe('provider /account/nothing-here');
    expect(await get('/token')).toBe('provider /token');
    expect(await get('/')).toBe('provider /');
  });

  it('refuses a router whose paths could start with anything', () => {
    const any = new Router();
    any.get('/:tenant/page', (ctx) => (ctx.body = 'page'));
    expect(() => ownRoutes([any])).toThrow(/first segment must be literal/);
  });
});
