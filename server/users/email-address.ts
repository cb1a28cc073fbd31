/** A plausible address (something@domain.tld); whether it exists is for the emailed link to show. */
export function isEmailAddress(value: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
}
