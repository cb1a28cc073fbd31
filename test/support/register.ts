import type * as oidc from 'openid-client';
import { Browser, formAction, hiddenInput } from './browser.ts';
import { countCalls } from './counting.ts';
import { recipients } from './mailbox.ts';
import type { TestSmtpServer } from './smtp.ts';
import { authorizationRequest } from './relying-party.ts';
import type { TestServer } from './server.ts';

/** The password every registration in the tests chooses (strong enough for the policy). */
export const PASSWORD = 'copper kettle window 73 sparrow';

/** Opens the app's sign-in, follows "Create an account" and submits the form. */
export async function registerAt(
  { server, rp }: { server: TestServer; rp: oidc.Configuration },
  browser: Browser,
  fields: Record<string, string>,
) {
  const request = await authorizationRequest(rp, { scope: 'openid email profile' });
  const login = await browser.follow(await browser.get(request.url), server.url);
  const loginHtml = await login.res.text();
  const href = /href="([^"]*\/register)"/.exec(loginHtml)![1]!;
  const formHtml = await (await browser.get(new URL(href, server.url))).text();
  const res = await browser.post(new URL(formAction(formHtml, '/register'), server.url), {
    csrf: hiddenInput(formHtml, 'csrf'),
    password: PASSWORD,
    confirm: PASSWORD,
    ...fields,
  });
  return { ...request, res, html: await res.text() };
}

/** A page with the addresses and tokens in it blanked out, to compare two answers. */
export const strip = (html: string) =>
  html.replace(/[\w.]+@example\.test/g, 'X').replace(/[\w-]{40,}/g, 'T');

/** What a visitor sees of an answer: status, cookie names, redirect and the page. */
export const answer = (res: Response, html: string) => ({
  status: res.status,
  cookies: res.headers
    .getSetCookie()
    .map((c) => c.split('=')[0])
    .sort(),
  location: res.headers.get('location'),
  page: strip(html),
});

/**
 * Registers `email` and then asks to have the email sent again, as the "check your email" page
 * offers; the two answers, and the argon2 hashes and verifications this took.
 */
export async function registerAndResend(
  app: { server: TestServer; rp: oidc.Configuration },
  email: string,
) {
  const hashes = countCalls(app.server.passwords, 'hash');
  const verifications = countCalls(app.server.passwords, 'verify');
  try {
    const browser = new Browser();
    const registered = await registerAt(app, browser, { email, name: 'Some Body' });
    const res = await browser.post(
      new URL(formAction(registered.html, '/verify/resend'), app.server.url),
      { csrf: hiddenInput(registered.html, 'csrf'), email },
    );
    return {
      registered: answer(registered.res, registered.html),
      resent: answer(res, await res.text()),
      work: { hashes: hashes.calls, verifications: verifications.calls },
    };
  } finally {
    hashes.restore();
    verifications.restore();
  }
}

/** Waits for `count` mails to `to` among those after the first `after`, whose subject has `subject`. */
export async function mailsTo(
  smtp: TestSmtpServer,
  to: string,
  after: number,
  subject: string,
  count: number,
) {
  const matching = () =>
    smtp.messages
      .slice(after)
      .filter((m) => recipients(m).includes(to) && (m.subject ?? '').includes(subject));
  const deadline = Date.now() + 10_000;
  while (matching().length < count && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  return matching();
}
