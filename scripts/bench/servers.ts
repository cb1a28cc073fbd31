// The servers compared in one run: Latchkey on each storage and the bare oidc-provider reference
// on each adapter, all started before the first measurement and running until the last.
import { startBare } from './bare-target.ts';
import type { ServerName } from './plan.ts';
import type { Cleanup, ServerProcess } from './process.ts';
import { startTarget, type Client, type PgCounters, type Storage } from './target.ts';

/** A progress line on stderr. */
export type Note = (line: string) => void;

export type Server = ServerProcess & {
  name: ServerName;
  url: string;
  /** Confidential code-flow client with REDIRECT_URI. */
  web: Client;
  /** Confidential client_credentials client. */
  service: Client;
  /** Latchkey's storage; none for the bare reference. */
  storage?: Storage | undefined;
  /** Latchkey on PostgreSQL only. */
  readPgCounters?: (() => Promise<PgCounters>) | undefined;
};

export async function startServer(name: ServerName, cleanup: Cleanup): Promise<Server> {
  switch (name) {
    case 'bare in-memory':
      return { name, ...(await startBare('in-memory', cleanup)) };
    case 'bare+redis':
      return { name, ...(await startBare('redis', cleanup)) };
    default:
      return { name, ...(await startTarget(name, cleanup)) };
  }
}

/** Starts `names` one after another (the CLI's argon2 hashes and PGlite's start are CPU-bound). */
export async function startServers(
  names: ServerName[],
  cleanup: Cleanup,
  note: Note,
): Promise<Server[]> {
  const servers: Server[] = [];
  for (const name of names) {
    note(`${name}: starting`);
    servers.push(await startServer(name, cleanup));
  }
  return servers;
}

/** `list` rotated left by `by`: the order of the servers' turns at one point. */
export function rotated<T>(list: readonly T[], by: number): T[] {
  const start = by % list.length;
  return [...list.slice(start), ...list.slice(0, start)];
}
