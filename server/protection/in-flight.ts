/**
 * Attempts being checked right now in this process, per key (an account, a device, an IP), each
 * key capped. Entering takes every key or none; the release frees them. Nothing here talks to a
 * store, so an outage of the rate-limit store cannot leave a slot taken.
 */
export function createInFlight() {
  const counts = new Map<string, number>();

  return {
    /** Takes a slot for each [key, cap]; undefined (nothing taken) when any key is at its cap. */
    enter(slots: [key: string, cap: number][]): (() => void) | undefined {
      if (slots.some(([key, cap]) => (counts.get(key) ?? 0) >= cap)) return undefined;
      for (const [key] of slots) counts.set(key, (counts.get(key) ?? 0) + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        for (const [key] of slots) {
          const left = counts.get(key)! - 1;
          if (left > 0) counts.set(key, left);
          else counts.delete(key);
        }
      };
    },
  };
}

export type InFlight = ReturnType<typeof createInFlight>;
