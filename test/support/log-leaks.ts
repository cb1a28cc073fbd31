// Searching captured log lines for what they must never show.

/** Something the logs must never show, and how to look for it. */
export type Secret = { what: string; value: string; anyCase?: boolean };

/** The ways a value can appear in a log line: as is, JSON-escaped, or URL-encoded (a form body, a query). */
function spellings(value: string): string[] {
  return [
    ...new Set([
      value,
      JSON.stringify(value).slice(1, -1),
      encodeURIComponent(value),
      new URLSearchParams({ v: value }).toString().slice(2),
    ]),
  ];
}

/** Every (secret, line) pair where the line shows the secret. */
export function leaks(lines: string[], secrets: Secret[]) {
  return secrets.flatMap((secret) =>
    lines
      .filter((line) =>
        spellings(secret.value).some((s) =>
          secret.anyCase ? line.toLowerCase().includes(s.toLowerCase()) : line.includes(s),
        ),
      )
      .map((line) => ({ secret: secret.what, line })),
  );
}
