import type { Context } from 'koa';
import { HttpError } from './http-error.ts';

/** Hosted forms hold a few short fields; anything bigger is not one of ours. */
export const FORM_LIMIT_BYTES = 16 * 1024;

/** Reads an application/x-www-form-urlencoded body once, refusing other types and oversize bodies. */
export async function readForm(ctx: Context): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded'))
    throw new HttpError(415, 'Expected a form submission.');
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > FORM_LIMIT_BYTES) throw new HttpError(413, 'The form is too large.');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > FORM_LIMIT_BYTES) throw new HttpError(413, 'The form is too large.');
    chunks.push(chunk);
  }
  const form: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    // PostgreSQL text cannot hold NUL; no field of ours has a use for it.
    if (key.includes('\u0000') || value.includes('\u0000'))
      throw new HttpError(400, 'The form contains a character that is not allowed.');
    form[key] ??= value;
  }
  return form;
}
