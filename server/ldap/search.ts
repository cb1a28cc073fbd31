import type { Entry, Filter } from 'ldapts';
import { inSpan, startSpan } from '../tracing/span.ts';
import type { Connection } from './connection.ts';

export type SearchInput = {
  base: string;
  filter: Filter;
  attributes: string[];
  /** Attributes that arrive as bytes (objectGUID), not as text. */
  binary?: string[];
  scope?: 'base' | 'sub';
};

/** Asks for no attributes at all: only the DNs (RFC 4511 §4.5.1.8). */
export const NO_ATTRIBUTES = ['1.1'];

/**
 * Every matching entry, page by page (RFC 2696 simple paged results): AD's MaxPageSize (1000)
 * limits a page, not the whole answer. OpenLDAP caps a paged search's total at the hard size
 * limit (500) unless the service account has `size.prtotal=unlimited` (docs/directory.md).
 * Search references (AD's referrals to its DNS partitions) are not followed.
 */
export async function* searchPages(
  client: Connection,
  input: SearchInput,
  pageSize: number,
): AsyncGenerator<Entry[]> {
  // Not the active span: a generator's pauses are the caller's time, not the search's.
  const span = startSpan('ldap.search', { 'ldap.paged': true });
  try {
    for await (const page of client.searchPaginated(input.base, {
      scope: input.scope ?? 'sub',
      filter: input.filter,
      attributes: input.attributes,
      explicitBufferAttributes: input.binary ?? [],
      paged: { pageSize },
    })) {
      if (page.searchEntries.length) yield page.searchEntries;
    }
  } finally {
    span.end();
  }
}

/** All matching entries in one array. */
export async function searchAll(
  client: Connection,
  input: SearchInput,
  pageSize: number,
): Promise<Entry[]> {
  const entries: Entry[] = [];
  for await (const page of searchPages(client, input, pageSize)) entries.push(...page);
  return entries;
}

/**
 * At most `limit` entries, unpaged: a sign-in looks for one user, and two matches already mean
 * the login is ambiguous (ldapts returns what came when the size limit is reached).
 */
export async function searchFew(
  client: Connection,
  input: SearchInput,
  limit: number,
): Promise<Entry[]> {
  // No filter in the span: a sign-in's filter holds the login typed.
  const { searchEntries } = await inSpan('ldap.search', {}, () =>
    client.search(input.base, {
      scope: input.scope ?? 'sub',
      filter: input.filter,
      attributes: input.attributes,
      explicitBufferAttributes: input.binary ?? [],
      sizeLimit: limit,
    }),
  );
  return searchEntries;
}
