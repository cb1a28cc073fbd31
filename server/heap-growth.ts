// How far V8 lets the server's heap grow past what it last found alive before collecting again.
// By default up to 4x on a machine with plenty of memory: the server keeps ~40 MiB alive but
// every request leaves garbage, so under load the old generation reached ~150 MiB and the
// process ~100 MiB more resident memory than it needed (pages V8 has touched stay resident).
// 2x caps that: in the same runs, peak RSS under the benchmark's load on PostgreSQL + Redis fell
// from 362-374 to 284-327 MiB, for ~3% more server CPU per client_credentials request (median of
// 4 alternated rounds, 2 shared cores). 1.3x held 267-271 MiB but cost ~19% more CPU. V8 reads the
// flag at each collection, so it applies from here on; a --heap-growing-percent given to node
// (0: V8's own choice) is left as given. Imported by the server's entry point, first.
import { setFlagsFromString } from 'node:v8';

const HEAP_GROWING_PERCENT = 100;

if (!process.execArgv.some((arg) => arg.startsWith('--heap-growing-percent')))
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
