import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../support/browser.ts';
import { startMailApp, type MailApp } from '../support/mail-app.ts';
import { recipients } from '../support/mailbox.ts';
import { askForResetLink } from '../support/password-reset.ts';

const USER = { email: 'patient@example.test', password: 'a patient long password' };

describe('mail asked for while the SMTP server is down or refusing', () => {
  let app: MailApp;
  beforeAll(async () => {
    app = await startMailApp({ storage: 'embedded', clientName: 'Mail app', user: USER });
  });
  afterAll(() => app?.stop());

  const toUser = () => app.smtp.messages.filter((m) => recipients(m).includes(USER.email));
  const failedDeliveries = () =>
    app.server.logs.filter((line) => line.includes('"mail delivery failed"')).length;
  // The reset link and the address differ from one answer to the next; the page must not.
  const strip = (html: string) => html.replace(/[\w-]{43}/g, 'T');

  it('answers the reset request as usual, and delivers the mail once when the server is back', async () => {
    const normal = await askForResetLink(app, new Browser(), USER.email);
    await app.smtp.waitForMessage((m) => recipients(m).includes(USER.email));
    const before = toUser().length;

    await app.smtp.stop();
    const asked = Date.now();
    const down = await askForResetLink(app, new Browser(), USER.email);
    expect(down.status).toBe(200);
    expect(strip(down.html)).toBe(strip(normal.html));
    expect(Date.now() - asked).toBeLessThan(2000);

    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(failedDeliveries()).toBeGreaterThan(0); // tried while down, and failed
    await app.smtp.start();
    await app.smtp.waitForMessage(() => toUser().length > before, 10_000);
    // Long enough for another retry to come: none does, the mail went out once.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(toUser()).toHaveLength(before + 1);
    expect(failedDeliveries()).toBeLessThanOrEqual(3);
  });

  it('retries a mail the server refuses for now (451) until it takes it, and sends it once', async () => {
    const before = toUser().length;
    const failedBefore = failedDeliveries();
    app.smtp.refuseNext(2, 451);
    const asked = await askForResetLink(app, new Browser(), USER.email);
    expect(asked.status).toBe(200);
    await app.smtp.waitForMessage(() => toUser().length > before, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(toUser()).toHaveLength(before + 1);
    expect(failedDeliveries() - failedBefore).toBe(2);
  });
});
