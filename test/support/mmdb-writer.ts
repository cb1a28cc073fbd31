import { mkdtempSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A small writer of MaxMind DB files (https://maxmind.github.io/MaxMind-DB/), enough for test
// fixtures: an IPv6 search tree (IPv4 networks at ::a.b.c.d, as MaxMind's own databases keep
// them), 24-bit records, and a data section of maps, arrays, strings and unsigned integers.
// MaxMind's test databases may not be copied into the repository; the real `maxmind` reader
// opens what this writes.

export type MmdbValue = string | number | MmdbValue[] | { [key: string]: MmdbValue };

/** A network in CIDR notation (IPv4 or IPv6) and the record its addresses map to. */
export type MmdbNetwork = { network: string; record: MmdbValue };

const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');
const RECORD_BITS = 24;
const DATA_SEPARATOR = 16;

// Data section types (spec: "Output Data Section"); 8 and above are written as extended types.
const TYPE = { string: 2, uint16: 5, uint32: 6, map: 7, uint64: 9, array: 11 } as const;

/** A field's control byte(s): its type and size (spec: "Data Field Format"). */
function control(type: number, size: number): Buffer {
  const head = type <= 7 ? [type << 5] : [0, type - 7];
  let sizeBytes: number[] = [];
  let marker = size;
  if (size >= 65_821) {
    marker = 31;
    const rest = size - 65_821;
    sizeBytes = [(rest >> 16) & 0xff, (rest >> 8) & 0xff, rest & 0xff];
  } else if (size >= 285) {
    marker = 30;
    sizeBytes = [((size - 285) >> 8) & 0xff, (size - 285) & 0xff];
  } else if (size >= 29) {
    marker = 29;
    sizeBytes = [size - 29];
  }
  head[0]! |= marker;
  return Buffer.from([...head, ...sizeBytes]);
}

function uint(type: number, value: number | bigint): Buffer {
  let hex = BigInt(value).toString(16);
  if (hex === '0') hex = '';
  if (hex.length % 2) hex = `0${hex}`;
  const bytes = Buffer.from(hex, 'hex');
  return Buffer.concat([control(type, bytes.length), bytes]);
}

/** One value of the data section; numbers are written as uint32. */
function encode(value: MmdbValue): Buffer {
  if (typeof value === 'number') return uint(TYPE.uint32, value);
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([control(TYPE.string, bytes.length), bytes]);
  }
  if (Array.isArray(value))
    return Buffer.concat([control(TYPE.array, value.length), ...value.map(encode)]);
  const entries = Object.entries(value);
  return Buffer.concat([
    control(TYPE.map, entries.length),
    ...entries.flatMap(([k, v]) => [encode(k), encode(v)]),
  ]);
}

/** The 128 bits of an address, as 0/1, IPv4 mapped to ::a.b.c.d (the tree's IPv4 subtree). */
function bitsOf(address: string): number[] {
  const bytes = new Uint8Array(16);
  if (isIPv4(address)) bytes.set(address.split('.').map(Number), 12);
  else {
    const [head = '', tail = ''] = address.split('::');
    const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
    const h = groups(head);
    const t = groups(tail);
    const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
    all.forEach((g, i) => bytes.set([g >> 8, g & 0xff], i * 2));
  }
  return [...bytes].flatMap((b) => Array.from({ length: 8 }, (_, i) => (b >> (7 - i)) & 1));
}

type Node = { children: [Node | Leaf | undefined, Node | Leaf | undefined] };
type Leaf = { data: number };

/** Writes the database into a new temporary folder; returns the file's path. */
export function writeMmdb(networks: MmdbNetwork[], databaseType = 'Latchkey-Test-City'): string {
  const data: Buffer[] = [];
  let dataLength = 0;
  const root: Node = { children: [undefined, undefined] };
  for (const { network, record } of networks) {
    const [address = '', prefix] = network.split('/');
    const depth = Number(prefix) + (isIPv4(address) ? 96 : 0);
    const bits = bitsOf(address);
    let node = root;
    for (let i = 0; i < depth - 1; i++) {
      const next = node.children[bits[i]!];
      if (next && 'data' in next) throw new Error(`${network} lies inside another network`);
      node = next ?? (node.children[bits[i]!] = { children: [undefined, undefined] });
    }
    node.children[bits[depth - 1]!] = { data: dataLength };
    const encoded = encode(record);
    data.push(encoded);
    dataLength += encoded.length;
  }

  // Nodes numbered breadth-first from the root (0); then each record is a node's number, the
  // node count for "no data", or node count + 16 + the offset of its data.
  const nodes: Node[] = [root];
  for (let i = 0; i < nodes.length; i++)
    for (const child of nodes[i]!.children) if (child && 'children' in child) nodes.push(child);
  const count = nodes.length;
  const numberOf = new Map(nodes.map((n, i) => [n, i]));
  const tree = Buffer.alloc(count * ((RECORD_BITS * 2) / 8));
  nodes.forEach((node, i) =>
    node.children.forEach((child, side) => {
      const value = !child
        ? count
        : 'data' in child
          ? count + DATA_SEPARATOR + child.data
          : numberOf.get(child)!;
      tree.writeUIntBE(value, i * 6 + side * 3, 3);
    }),
  );

  const metadata = Buffer.concat([
    control(TYPE.map, 9),
    encode('node_count'),
    uint(TYPE.uint32, count),
    encode('record_size'),
    uint(TYPE.uint16, RECORD_BITS),
    encode('ip_version'),
    uint(TYPE.uint16, 6),
    encode('database_type'),
    encode(databaseType),
    encode('languages'),
    encode(['en']),
    encode('binary_format_major_version'),
    uint(TYPE.uint16, 2),
    encode('binary_format_minor_version'),
    uint(TYPE.uint16, 0),
    encode('build_epoch'),
    uint(TYPE.uint64, Math.floor(Date.now() / 1000)),
    encode('description'),
    encode({ en: 'Latchkey test fixture' }),
  ]);
  const file = join(mkdtempSync(join(tmpdir(), 'latchkey-mmdb-')), 'test.mmdb');
  writeFileSync(
    file,
    Buffer.concat([tree, Buffer.alloc(DATA_SEPARATOR), ...data, METADATA_MARKER, metadata]),
  );
  return file;
}

/** A GeoIP2/GeoLite2 City record: what MaxMind's City databases hold for a network. */
export const cityRecord = (city: string, country: string, isoCode: string): MmdbValue => ({
  city: { names: { en: city } },
  country: { iso_code: isoCode, names: { en: country } },
});
