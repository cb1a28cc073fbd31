import { z } from 'zod';
import { ApiProblem } from './problems.ts';
import { holdsNul } from './route.ts';

/** The query of a paginated list: how many, and where the last page ended. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).meta({
    description: 'Items per page, 1 to 200',
  }),
  cursor: z.string().max(512).optional().meta({
    description: 'The `next` of the previous page; absent for the first page',
  }),
});

/** A page of items, and the cursor of the next page when there is one. */
export const pageOf = <T extends z.ZodType>(item: T, id: string) =>
  z
    .object({
      items: z.array(item),
      next: z
        .string()
        .nullable()
        .meta({ description: 'Cursor of the next page; null on the last' }),
    })
    .meta({ id });

/**
 * A cursor names the position after the last item shown (its sort key), opaque to callers:
 * base64url JSON. One that does not decode to the shape `schema` expects is a 400, never a
 * 500 and never another user's position in disguise (a cursor is a position, not a filter).
 */
export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeCursor<T extends z.ZodType>(cursor: string | undefined, schema: T) {
  if (cursor === undefined) return undefined;
  try {
    const position: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const parsed = holdsNul(position) ? undefined : schema.safeParse(position);
    if (parsed?.success) return parsed.data as z.output<T>;
  } catch {
    // not JSON: refused below
  }
  throw new ApiProblem('invalid-request', 'The cursor is not one this list gave.', {
    errors: [{ in: 'query', path: 'cursor', message: 'Not a cursor of this list' }],
  });
}
