// The account pages' times: the server knows no time zone of the user's, so they say UTC.
const format = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});

/** A moment (epoch seconds) as the pages show it, with its ISO form for <time datetime>. */
export function dateTime(epochSeconds: number): { text: string; iso: string } {
  const at = new Date(epochSeconds * 1000);
  return { text: `${format.format(at)} UTC`, iso: at.toISOString() };
}
