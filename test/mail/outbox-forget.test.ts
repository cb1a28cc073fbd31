import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../server/db.ts';
import { createOutboxStore } from '../../server/mail/outbox-store.ts';
import type { OutgoingMail } from '../../server/mail/transport.ts';
import { tempEmbeddedDb } from '../support/embedded-db.ts';
import { SEALING_KEY } from '../support/mail.ts';

const mailTo = (to: string): OutgoingMail => ({
  from: 'no-reply@latchkey.test',
  to,
  template: 'password-reset',
  subject: 'Reset',
  text: 'a link',
  html: '<p>a link</p>',
});

describe('mail waiting for a deleted account', () => {
  let temp: { db: Db; cleanup(): Promise<void> };
  beforeAll(async () => {
    temp = await tempEmbeddedDb();
  });
  afterAll(() => temp?.cleanup());

  it('is dropped from the outbox, found by its sealed recipient; other mail stays', async () => {
    const outbox = createOutboxStore(temp.db, SEALING_KEY);
    const later = new Date(Date.now() + 3_600_000);
    const theirs = await outbox.add(mailTo('Leaving@Example.test'), later);
    const others = await outbox.add(mailTo('staying@example.test'), later);
    await temp.db('mail_outbox').insert({
      id: 'no-message',
      template: 'password-reset',
      status: 'failed',
      expires_at: later,
    });

    const gone = await temp.db.transaction((trx) =>
      outbox.forgetMailTo(trx, 'leaving@example.test'),
    );
    expect(gone).toBe(1);
    const left = await temp.db('mail_outbox').pluck('id');
    expect(left.sort()).toEqual([others, 'no-message'].sort());
    expect(left).not.toContain(theirs);
  });
});
