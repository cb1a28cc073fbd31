// Distinguished names (RFC 4514). Directories spell one DN many ways: OpenLDAP answers
// `cn=Smith\2C John` for `cn=Smith\, John`, Active Directory upper-cases attribute types, and
// older servers put spaces after commas. DNs are compared only in their normalised form.

export type Rdn = { type: string; value: string }[];

const HEX_PAIR = /^[0-9a-fA-F]{2}$/;
const ATTRIBUTE_TYPE = /^([a-zA-Z][a-zA-Z0-9-]*|\d+(\.\d+)*)$/;
/** What escapeDnValue escapes; most values have none of it. */
const NEEDS_ESCAPE = /["+,;<>\\=\0]|^[# ]| $/;

const endsValue = (char: string | undefined) => char === ',' || char === '+' || char === ';';

/**
 * The value that starts at `start` and holds an escape, unescaped, and where it ends. Hex
 * escapes are bytes, decoded as UTF-8 once a run of them ends (`\C3\AB` is one character);
 * the text between them is taken in slices.
 */
function escapedValue(dn: string, start: number): [value: string, end: number] {
  let value = '';
  let bytes: number[] = [];
  let significant = 0; // length up to the last escaped or non-space character
  const flush = () => {
    if (!bytes.length) return;
    value += Buffer.from(bytes).toString('utf8');
    bytes = [];
    significant = value.length;
  };
  let i = start;
  let plain = i;
  const takePlain = () => {
    if (plain === i) return;
    flush();
    value += dn.slice(plain, i);
    let last = i;
    while (last > plain && dn[last - 1] === ' ') last--;
    if (last > plain) significant = value.length - (i - last);
  };
  while (i < dn.length && !endsValue(dn[i])) {
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
    } else throw new Error(`invalid DN (escape at end): ${JSON.stringify(dn)}`);
    plain = i;
  }
  takePlain();
  flush();
  return [value.slice(0, significant), i];
}

/** Parses a DN string into RDNs of unescaped values; throws on malformed input. */
export function parseDn(dn: string): Rdn[] {
  const rdns: Rdn[] = [];
  let rdn: Rdn = [];
  let i = 0;
  if (!dn.trim()) return [];
  while (i <= dn.length) {
    while (dn[i] === ' ') i++;
    const typeStart = i;
    while (i < dn.length && dn[i] !== '=') i++;
    const type = dn.slice(typeStart, i).trim();
    if (i >= dn.length || !ATTRIBUTE_TYPE.test(type))
      throw new Error(`invalid DN (attribute type): ${JSON.stringify(dn)}`);
    i++; // '='
    while (dn[i] === ' ') i++;
    const start = i;
    while (i < dn.length && !endsValue(dn[i]) && dn[i] !== '\\') i++;
    let value: string;
    if (dn[start] === '#') {
      // A BER-encoded value in hex: kept as written, compared case-insensitively.
      while (i < dn.length && !endsValue(dn[i])) i++;
      value = dn.slice(start, i).trim();
    } else if (dn[i] === '\\') {
      [value, i] = escapedValue(dn, start);
    } else {
      // Nothing escaped, as most values: the text less its trailing spaces.
      let last = i;
      while (last > start && dn[last - 1] === ' ') last--;
      value = dn.slice(start, last);
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
