import { describe, expect, it } from 'vitest';
import { maskEmails } from '../../server/log.ts';
import { capturedLogger } from '../support/mail.ts';

describe('the email mask', () => {
  it.each([
    ['alice@example.com', 'al***@example.com'],
    ['Zephyrine.Quillfeather+tag@Example.TEST', 'Ze***@Example.TEST'],
    ['José.García@example.test', 'Jo***@example.test'],
    ['Ælfgifu.Wintersmith@example.test', 'Æl***@example.test'],
    ["o'brien.smith@example.org", "o'***@example.org"],
    ['zoë@exämple.test', 'zo***@exämple.test'],
    ['postmaster@[192.0.2.1]', 'po***@[192.0.2.1]'],
    ['/forgot?email=alice%40example.com&x=1', '/forgot?email=al***%40example.com&x=1'],
  ])(
    'keeps two characters of any address the forms accept, in any spelling: %s → %s',
    (email, masked) => {
      expect(maskEmails(`to ${email}, then`)).toBe(`to ${masked}, then`);
    },
  );

  it('masks child logger fields, interpolated values and deeply nested fields', () => {
    const { log, lines } = capturedLogger();
    log.child({ user: 'carol.child@example.test' }).info('signed in');
    log.info(
      'mail to %s, %o, %j',
      'dave.string@example.test',
      { to: 'erin.object@example.test' },
      {
        to: 'fay.json@example.test',
      },
    );
    log.info({ a: { b: { c: { d: { e: { f: 'gus.deep@example.test' } } } } } }, 'deep');
    const out = JSON.stringify(lines);
    expect(lines).toHaveLength(3);
    for (const local of ['carol.child', 'dave.string', 'erin.object', 'fay.json', 'gus.deep'])
      expect(out).not.toContain(local);
    expect(out).toContain('ca***@example.test');
    expect(out).toContain('da***@example.test');
  });
});
