import { BlockList, isIP } from 'node:net';
import type { CityResponse, Reader } from 'maxmind';
import { ConfigError } from '../config/load.ts';

/** "Lisbon, Portugal": where an IP address is, roughly, as far as a GeoIP database says. */
export type IpLocation = { of(ip: string | undefined): string | undefined };

/** Without GEOIP_DB: no address has a location. */
export const noIpLocation: IpLocation = { of: () => undefined };

// Addresses that name no place: loopback, private (RFC 1918, RFC 4193), link-local, carrier-grade
// NAT (RFC 6598) and the unspecified ones. A database may still list some of them (a company's
// own); for such an address it would name the server's site, not the user's.
const NOWHERE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const)
  NOWHERE.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 127],
  ['fc00::', 7],
  ['fe80::', 10],
] as const)
  NOWHERE.addSubnet(network, prefix, 'ipv6');

/** An IPv4 address as Node may give it on a dual-stack socket (::ffff:a.b.c.d), unwrapped. */
const unmapped = (ip: string) => (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip) ? ip.slice(7) : ip);

/** A City (or Country) record's place in words: city, then country; undefined when it has none. */
function placeOf(record: CityResponse | null): string | undefined {
  if (!record) return undefined;
  const city = record.city?.names?.en;
  const country = record.country?.names?.en ?? record.country?.iso_code;
  return [city, country].filter(Boolean).join(', ') || undefined;
}

/**
 * Opens the GeoIP database at `path` (a MaxMind .mmdb file) once, into memory: each lookup then
 * walks the in-memory tree, with the reader's cache of recent answers. No path: no locations.
 * A path that cannot be opened as such a database stops the start, naming the setting: whoever
 * set it expects locations, and a typo would otherwise go unnoticed until someone looks.
 */
export async function openIpLocation(path: string | undefined): Promise<IpLocation> {
  if (!path) return noIpLocation;
  let reader: Reader<CityResponse>;
  try {
    // Loaded only when a database is configured.
    const { default: maxmind } = await import('maxmind');
    reader = await maxmind.open<CityResponse>(path);
  } catch (err) {
    throw new ConfigError([
      `GEOIP_DB: cannot open ${path} as a MaxMind database (${(err as Error).message})`,
    ]);
  }
  return {
    of(ip) {
      const address = unmapped(ip ?? '');
      const family = isIP(address);
      if (family === 0 || NOWHERE.check(address, family === 4 ? 'ipv4' : 'ipv6')) return undefined;
      try {
        return placeOf(reader.get(address));
      } catch {
        // A damaged record is no reason to fail the page that shows it: no location.
        return undefined;
      }
    },
  };
}
