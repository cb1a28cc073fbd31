import { answeringOutagesAsOAuth, withDeadline } from '../server/unavailable.ts';

/**
 * Every call to the store answers within `timeoutMs`, and a store that cannot be reached fails
 * as oidc-provider's `temporarily_unavailable` (503) rather than a server_error after a long
 * wait: the client and the user are told to try again, and nothing they hold is lost.
 */
export function answeringOutages<A extends object>(
  inner: A,
  model: string,
  timeoutMs: number | undefined,
): A {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      return answeringOutagesAsOAuth((...args: unknown[]) => {
        const call = method.apply(target, args);
        return timeoutMs ? withDeadline(call, timeoutMs, `${model} storage`) : call;
      });
    },
  });
}
