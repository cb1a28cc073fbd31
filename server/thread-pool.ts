// libuv's thread pool computes the argon2 hashes. Sized to the CPU cores rather than libuv's 4,
// it keeps each hash on a thread that stays busy: with more threads than cores, a hash often
// lands on a thread woken from sleep, and costs more CPU (measured on 2 cores: about 10% fewer
// hashes per second, whether 2 or 4 were asked for at once). libuv reads the variable when the
// pool first starts, so the entry points import this module before any other. (Some older
// Node 22 releases start the pool while loading modules; there, set it in the environment.)
import { availableParallelism } from 'node:os';

process.env.UV_THREADPOOL_SIZE ??= String(availableParallelism());
