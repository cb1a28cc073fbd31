import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { settings } from '../../config/defaults.ts';

const ROOT = join(import.meta.dirname, '../..');

/**
 * The variables a Markdown file's settings tables name: the tables whose first column is headed
 * `variable`, each row's first cell read for `NAME` in backticks (`A` / `B` names two). A row
 * naming `PREFIX_*` sends the reader to the file it links to, whose tables then name each one.
 */
function documentedIn(file: string): string[] {
  const names: string[] = [];
  let inTable = false;
  for (const line of readFileSync(join(ROOT, file), 'utf8').split('\n')) {
    const cells = line.startsWith('|') ? line.split(/(?<!\\)\|/).map((c) => c.trim()) : [];
    if (cells.length === 0) inTable = false;
    else if (cells[1] === 'variable') inTable = true;
    else if (inTable) {
      for (const [, name] of (cells[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]*\*?)`/g)) {
        if (!name!.endsWith('*')) names.push(name!);
        else {
          const link = /\]\(([^)#]+)/.exec(line)?.[1];
          if (!link) throw new Error(`${file}: ${name} links to no file that lists them`);
          const prefix = name!.slice(0, -1);
          const there = documentedIn(join(dirname(file), link));
          names.push(...there.filter((n) => n.startsWith(prefix)));
          expect(
            there.filter((n) => !n.startsWith(prefix)),
            `${link} lists only ${name}`,
          ).toEqual([]);
        }
      }
    }
  }
  return names;
}

describe('the README configuration table', () => {
  const declared = Object.keys(settings);
  const documented = documentedIn('README.md');

  it('documents every setting the server reads', () => {
    expect(declared.filter((name) => !documented.includes(name))).toEqual([]);
  });

  it('names no setting the server does not read', () => {
    expect(documented.filter((name) => !declared.includes(name))).toEqual([]);
  });

  it('reads the directory settings from the page the README points to', () => {
    expect(documented).toContain('LDAP_ATTR_FAMILY_NAME');
    expect(documented).toContain('PORT');
    expect(documented).toContain('HOST');
  });
});
