// Distinguished names (RFC 4514). Directories spell one DN many ways: OpenLDAP answers
// `cn=Smith\2C John` for `cn=Smith\, John`, Active Directory upper-cases attribute types, and
// older servers put spaces after commas. DNs are compared only in their normalised form.

export type Rdn = { type: string; value: string }[];

const HEX_PAIR = /^[0-9a-fA-F]{2}$/;

/** The whole character at `index`, a surrogate pair included. */
const charAt = (text: string, index: number) => String.fromCodePoint(text.codePointAt(index)!);

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
    const bytes: number[] = [];
    let significant = 0; // bytes up to the last escaped or non-space character
    if (dn[i] === '#') {
      // A BER-encoded value in hex: kept as written, compared case-insensitively.
      const start = i;
      while (i < dn.length && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') i++;
      bytes.push(...Buffer.from(dn.slice(start, i).trim()));
      significant = bytes.length;
    } else {
      while (i < dn.length && dn[i] !== ',' && dn[i] !== '+' && dn[i] !== ';') {
        if (dn[i] === '\\') {
          const pair = dn.slice(i + 1, i + 3);
          if (HEX_PAIR.test(pair)) {
            bytes.push(parseInt(pair, 16));
            i += 3;
          } else if (i + 1 < dn.length) {
            const char = charAt(dn, i + 1);
            bytes.push(...Buffer.from(char));
            i += 1 + char.length;
          } else fail('escape at end');
          significant = bytes.length;
        } else {
          const char = charAt(dn, i);
          bytes.push(...Buffer.from(char));
          if (char !== ' ') significant = bytes.length;
          i += char.length;
        }
      }
    }
    rdn.push({ type, value: Buffer.from(bytes.slice(0, significant)).toString('utf8') });
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
  let out = '';
  for (const [index, char] of [...value].entries()) {
    if (char === '\0') out += '\\00';
    else if ('"+,;<>\\='.includes(char)) out += `\\${char}`;
    else if ((char === '#' || char === ' ') && index === 0) out += `\\${char}`;
    else if (char === ' ' && index === [...value].length - 1) out += '\\ ';
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
  return normaliseDn(a) === normaliseDn(b);
}
