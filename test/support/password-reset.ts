import type * as oidc from 'openid-client';
import { formAction, hiddenInput, type Browser } from './browser.ts';
import { authorizationRequest } from './relying-party.ts';

/**
 * Opens the app's sign-in in `browser` and, from the login page, asks for a reset link for
 * `email`: the answer, and what the authorization request's callback needs.
 */
export async function askForResetLink(
  app: { server: { url: string }; rp: oidc.Configuration },
  browser: Browser,
  email: string,
) {
  const issuer = app.server.url;
  const { url, verifier, state } = await authorizationRequest(app.rp, { scope: 'openid email' });
  const login = await browser.follow(await browser.get(url), issuer);
  const loginHtml = await login.res.text();
  const forgotHref = /href="([^"]*\/forgot[^"]*)"/.exec(loginHtml)![1]!.replace(/&amp;/g, '&');
  const forgotHtml = await (await browser.get(new URL(forgotHref, issuer))).text();
  if (!forgotHtml.includes('Reset your password')) throw new Error('no password reset page');
  const sent = await browser.post(new URL(formAction(forgotHtml, '/forgot'), issuer), {
    csrf: hiddenInput(forgotHtml, 'csrf'),
    email,
  });
  return { verifier, state, status: sent.status, html: await sent.text() };
}
