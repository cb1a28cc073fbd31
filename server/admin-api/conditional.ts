import type { Context } from 'koa';
import { z } from 'zod';
import { ApiProblem } from './problems.ts';

// A resource's version is PostgreSQL's own row version, `xmin`: it changes with every update of
// the row, whoever makes it, with no column to keep in step (EF Core's Npgsql provider does the
// same). An update names it in its WHERE clause, so checking and writing are one statement.

/** SQL for the version of a row of `table`, as text. */
export const rowVersion = (table: string) => `${table}.xmin::text`;

/** The ETag of a version (a strong tag: If-Match compares strongly, RFC 9110 §13.1.1). */
export const entityTag = (version: string) => `"${version}"`;

/**
 * The version a change must still find, from If-Match: a change without one is refused (428,
 * RFC 6585 §3), so that two admins cannot overwrite each other without knowing it.
 */
export function expectedVersion(ctx: Context): string {
  const header = ctx.get('if-match').trim();
  if (!header)
    throw new ApiProblem(
      'precondition-required',
      'Send If-Match with the ETag of the version you read (GET it first).',
    );
  const tag = /^"([0-9]{1,10})"$/.exec(header);
  if (!tag)
    throw new ApiProblem('precondition-failed', 'If-Match names no version of this resource.');
  return tag[1]!;
}

/** The answer to a change whose If-Match no longer names the current version. */
export const changedMeanwhile = () =>
  new ApiProblem('precondition-failed', 'It changed since you read it: GET it again, then retry.');

/** The If-Match header of a change, as the document shows it (expectedVersion reads it). */
export const ifMatch = z.object({
  'if-match': z.string().optional().meta({ description: 'The ETag of the version you read' }),
});
