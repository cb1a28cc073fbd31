// Distinguished names (RFC 4514). Directories spell one DN many ways: OpenLDAP answers
// `cn=Smith\2C John` for `cn=Smith\, John`, Active Directory upper-cases attribute types, and
// older servers put spaces after commas. DNs are compared only in their normalised form.

export type Rdn = { type: string; value: string }[];

const HEX_PAIR = /^[0-9a-fA-F]{2}$/;
/** What escapeDnValue escapes; most values have none of it. */
const NEEDS_ESCAPE = /["+,;<>\\=\0]|^[# ]| $/;

/** Parses a DN string into RDNs of unescaped values; throws on malformed input. */
export function parseDn(dn: string): Rdn[] {
  const rdns: Rdn[] = [];
  let rdn: Rdn = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`invalid DN (${why}): ${JSON.stringify(dn)}`);
  };
  const skipSpaces = () => {
    while (dn[i] === ' ') i++;
  };
  const ends = (char: string | undefined) => char === ',' || char === '+' || char === ';';
  if (!dn.trim()) return [];
  while (i <= dn.length) {
    skipSpaces();
    const typeStart = i;
    while (i < dn.length && dn[i] !== '=') i++;
    const type = dn.slice(typeStart, i).trim();
    if (i >= dn.length || !/^([a-zA-Z][a-zA-Z0-9-]*|\d+(\.\d+)*)$/.test(type))
      fail('attribute type');
    i++; // '='
    skipSpaces();
    let value = '';
    if (dn[i] === '#') {
      // A BER-encoded value in hex: kept as written, compared case-insensitively.
      const start = i;
      while (i < dn.length && !ends(dn[i])) i++;
      value = dn.slice(start, i).trim();
    } else {
      // Hex escapes are bytes, decoded as UTF-8 once a run of them ends (`\C3\AB` is one
      // character); the text between them is kept as it is, in slices rather than by character.
      let bytes: number[] = [];
      let significant = 0; // length up to the last escaped or non-space character
      const flush = () => {
        if (!bytes.length) return;
        value += Buffer.from(bytes).toString('utf8');
        bytes = [];
        significant = value.length;
      };
      let plain = i;
      const takePlain = () => {
        if (plain === i) return;
        flush();
        const text = dn.slice(plain, i);
        value += text;
        const trimmed = text.replace(/ +$/, '');
        if (trimmed) significant = value.length - (text.length - trimmed.length);
      };
      while (i < dn.length && !ends(dn[i])) {
        if (dn[i] !== '\\') {
          i++;
          continue;
        }
        takePlain();
        const pair = dn.slice(i + 1, i + 3);
        if (HEX_PAIR.test(pair)) {
          bytes.push(parseInt(pair, 16));
          i += 3;
        } else if (i + 1 < dn.length) {
          flush();
          const char = String.fromCodePoint(dn.codePointAt(i + 1)!);
          value += char;
          significant = value.length;
          i += 1 + char.length;
        } else fail('escape at end');
        plain = i;
      }
      takePlain();
      flush();
      value = value.slice(0, significant);
    }
    rdn.push({ type, value });
    if (dn[i] === '+') {
      i++;
      continue;
    }
    rdns.push(rdn);
    rdn = [];
    if (i >= dn.length) break;
    i++; // ',' or ';'
  }
  return rdns;
}

/**
 * Escapes an attribute value for a DN string (RFC 4514 §2.4): the special characters, a leading
 * `#` or space, a trailing space, and NUL.
 */
export function escapeDnValue(value: string): string {
  if (!NEEDS_ESCAPE.test(value)) return value;
  const chars = [...value];
  let out = '';
  for (const [index, char] of chars.entries()) {
    if (char === '\0') out += '\\00';
    else if ('"+,;<>\\='.includes(char)) out += `\\${char}`;
    else if ((char === '#' || char === ' ') && index === 0) out += `\\${char}`;
    else if (char === ' ' && index === chars.length - 1) out += '\\ ';
    else out += char;
  }
  return out;
}

/**
 * One spelling per DN: types and values lower-cased (the naming attributes of users and groups
 * — cn, uid, ou, dc, o — all match case-insensitively), values unescaped then re-escaped the
 * same way, multi-valued RDNs sorted.
 */
export function normaliseDn(dn: string): string {
  return parseDn(dn)
    .map((rdn) =>
      rdn
        .map(({ type, value }) => `${type.toLowerCase()}=${escapeDnValue(value.toLowerCase())}`)
        .sort()
        .join('+'),
    )
    .join(',');
}

/** Whether two DN strings name the same entry. */
export function sameDn(a: string, b: string): boolean {
  // Mostly the directory spells a DN as it did last time.
  return a === b || normaliseDn(a) === normaliseDn(b);
}
