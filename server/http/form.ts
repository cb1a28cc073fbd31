import type { Context } from 'koa';
import { z } from 'zod';
import type { Csrf } from '../security/csrf.ts';
import type { FormBinding } from './csrf-bindings.ts';
import { readBodyText } from './body.ts';
import { HttpError } from './http-error.ts';

/** Hosted forms hold a few short fields; anything bigger is not one of ours. */
export const FORM_LIMIT_BYTES = 16 * 1024;
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its brackets, so an address 254. */
export const EMAIL_MAX = 254;
/** A person's or a device's name: room for any real one, not for a page of text. */
export const NAME_MAX = 200;

/** A one-time or recovery code, with room for the spaces and dashes pasted along with it. */
export const CODE_MAX = 64;

/** A form as posted: the first value of each name. */
export type RawForm = Record<string, string>;

// Fields whose value is never sent back to the page (passwords).
const secrets = new WeakSet<z.ZodType>();

/**
 * The fields of a form's schema. Each is the string posted, empty when missing; a bounded one
 * longer than its `max` characters is refused with the words the page shows for it.
 */
export const field = {
  text: (tooLong: string, max: number, { trim = true } = {}) =>
    (trim ? z.string().trim() : z.string()).max(max, tooLong).default(''),
  /** A value the page itself put in the form (a token, an id, a passkey's JSON answer). */
  hidden: () => z.string().default(''),
  /** A password: checked by whoever reads it, and never kept in the page shown again. */
  secret: () => {
    const schema = z.string().default('');
    secrets.add(schema);
    return schema;
  },
  /**
   * A one-time or recovery code: bounded like text, and like a password never offered back (a
   * recovery code stays good until it is used).
   */
  code: (wrong: string) => {
    const schema = z.string().trim().max(CODE_MAX, wrong).default('');
    secrets.add(schema);
    return schema;
  },
  /** Ticked or not: browsers send a checkbox only when it is ticked. */
  checkbox: () =>
    z
      .string()
      .default('')
      .transform((value) => value !== ''),
};

/** A form of a button alone: its CSRF token is all it posts. */
export const noFields = z.object({});

export type FormRead<T> =
  | { ok: true; fields: T }
  | {
      ok: false;
      /** What is wrong, in the page's words, each once. */
      problems: string[];
      /** The values posted, to show in the page again; a secret field's is always empty. */
      input: Record<keyof T & string, string>;
    };

/**
 * Posted by the "Try again" form of an outage page (server/http/errors.ts): the form comes back
 * filled in as it was, with a word on what happened, and nothing is done until it is sent again.
 */
export const RESUBMIT_FIELD = 'resubmit';
const RESUBMITTED =
  'The service was briefly unavailable, and nothing was changed. Check the form and send it again.';

/** What an outage page offers to send back: the non-secret fields as posted, with the CSRF token. */
export type Resubmit = Record<string, string>;

type FormCsrf = { csrf: Csrf; binding: FormBinding | ((form: RawForm) => FormBinding) };

/**
 * Reads a hosted form: the body once, then its CSRF token against the form's binding (a
 * mismatch is a 403 page: the form expired), then its fields against the form's schema.
 */
export async function readForm<S extends z.ZodObject>(
  ctx: Context,
  schema: S,
  { csrf, binding }: FormCsrf,
): Promise<FormRead<z.output<S>>> {
  const raw = await readBody(ctx);
  const bound = typeof binding === 'function' ? binding(raw) : binding;
  if (!csrf.verify(bound, raw.csrf)) throw new HttpError(403, bound.expired);
  const input = Object.fromEntries(
    Object.entries(schema.shape).map(([name, type]) => [
      name,
      secrets.has(type as z.ZodType) ? '' : (raw[name] ?? ''),
    ]),
  ) as Record<keyof z.output<S> & string, string>;
  // Should what follows meet an outage, its page offers this input back (never a secret).
  if (Object.values(input).some(Boolean))
    (ctx.state as { resubmit?: Resubmit }).resubmit = { ...input, csrf: raw.csrf! };
  if (raw[RESUBMIT_FIELD] !== undefined) return { ok: false, problems: [RESUBMITTED], input };
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, fields: parsed.data };
  const problems = [...new Set(parsed.error.issues.map((issue) => issue.message))];
  return { ok: false, problems, input };
}

/** A query parameter as text; missing or repeated, empty. */
export function queryText(ctx: Context, name: string): string {
  const value = ctx.query[name];
  return typeof value === 'string' ? value : '';
}

/** Reads an application/x-www-form-urlencoded body once, refusing other types and oversize bodies. */
async function readBody(ctx: Context): Promise<RawForm> {
  if (!ctx.is('application/x-www-form-urlencoded'))
    throw new HttpError(415, 'Expected a form submission.');
  const text = await readBodyText(ctx, FORM_LIMIT_BYTES);
  if (text === undefined) throw new HttpError(413, 'The form is too large.');
  const form: RawForm = {};
  for (const [key, value] of new URLSearchParams(text)) {
    // PostgreSQL text cannot hold NUL; no field of ours has a use for it.
    if (key.includes('\u0000') || value.includes('\u0000'))
      throw new HttpError(400, 'The form contains a character that is not allowed.');
    form[key] ??= value;
  }
  return form;
}
