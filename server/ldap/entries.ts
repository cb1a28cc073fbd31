import type { Entry } from 'ldapts';
import type { DirectorySettings } from './presets.ts';

/** A user entry as Latchkey reads it, whatever the directory calls each attribute. */
export type DirectoryUser = {
  /** The stable id: entryUUID, or objectGUID as a UUID string. Survives renames and moves. */
  id: string;
  /** As the directory spelled it; compare with sameDn/normaliseDn. */
  dn: string;
  username: string | undefined;
  email: string;
  name: string | undefined;
  givenName: string | undefined;
  familyName: string | undefined;
  disabled: boolean;
  /** The directory's modification time (GeneralizedTime), when it gave one. */
  modified: string | undefined;
};

/** An entry that cannot become a local user (no stable id, no email). */
export class UnusableEntryError extends Error {}

/** Attributes to ask for: operational ones (entryUUID, modifyTimestamp) are only sent on request. */
export function userAttributes(s: DirectorySettings): string[] {
  const a = s.attributes;
  return [
    ...new Set([
      a.id,
      a.username,
      ...a.email,
      a.name,
      a.givenName,
      a.familyName,
      a.modified,
      s.disabledAttribute,
    ]),
  ];
}

/** An attribute's values, found whatever case the server gave its name in. */
function valuesOf(entry: Entry, attribute: string): Entry[string] | undefined {
  // Mostly spelled as asked: no list of the entry's names to search.
  if (Object.hasOwn(entry, attribute)) return entry[attribute];
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  return key === undefined ? undefined : entry[key];
}

/** The first value of an attribute, found whatever case the server gave its name in. */
export function firstValue(entry: Entry, attribute: string): string | Buffer | undefined {
  const value = valuesOf(entry, attribute);
  const first = Array.isArray(value) ? value[0] : value;
  return first === '' ? undefined : first;
}

/** All values of an attribute as strings. */
export function allValues(entry: Entry, attribute: string): string[] {
  const value = valuesOf(entry, attribute);
  return (Array.isArray(value) ? value : value === undefined ? [] : [value]).map(String);
}

const text = (entry: Entry, attribute: string) => {
  const value = firstValue(entry, attribute);
  return value === undefined ? undefined : String(value).trim() || undefined;
};

/**
 * objectGUID's 16 bytes as the UUID string AD tools show: the first three fields are stored
 * little-endian (MS-DTYP §2.3.4.2), the last two as they are.
 */
export function guidToUuid(bytes: Buffer): string {
  if (bytes.length !== 16) throw new UnusableEntryError(`objectGUID of ${bytes.length} bytes`);
  const hex = (indexes: number[]) => indexes.map((i) => bytes[i]!.toString(16).padStart(2, '0'));
  return [hex([3, 2, 1, 0]), hex([5, 4]), hex([7, 6]), hex([8, 9]), hex([10, 11, 12, 13, 14, 15])]
    .map((part) => part.join(''))
    .join('-');
}

/** entryUUID, or objectGUID as a UUID string. */
export function stableId(entry: Entry, s: DirectorySettings): string {
  const value = firstValue(entry, s.attributes.id);
  if (value === undefined) throw new UnusableEntryError(`no ${s.attributes.id}`);
  if (s.binaryId) return guidToUuid(Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1'));
  return String(value).toLowerCase();
}

/** What links an entry to its account and its groups, and whether the directory disabled it. */
export type EntryBasics = Pick<DirectoryUser, 'id' | 'dn' | 'username' | 'disabled'>;

/**
 * An entry's basics, which an entry that is no user (no email) still has; UnusableEntryError
 * when it lacks a stable id.
 */
export function entryBasics(entry: Entry, s: DirectorySettings): EntryBasics {
  return {
    id: stableId(entry, s),
    dn: entry.dn,
    username: text(entry, s.attributes.username),
    disabled: s.isDisabled(text(entry, s.disabledAttribute)),
  };
}

/** Reads a user entry; UnusableEntryError when it lacks a stable id or an email address. */
export function toDirectoryUser(entry: Entry, s: DirectorySettings): DirectoryUser {
  const a = s.attributes;
  const email = a.email.map((attribute) => text(entry, attribute)).find(Boolean);
  if (!email || !email.includes('@'))
    throw new UnusableEntryError(`no email address in ${a.email.join(' or ')}`);
  return {
    ...entryBasics(entry, s),
    email,
    name: text(entry, a.name),
    givenName: text(entry, a.givenName),
    familyName: text(entry, a.familyName),
    modified: text(entry, a.modified),
  };
}
