// What a directory sync reports. The counts are exact; the lists name only the first changes and
// problems: a first sync of 100,000 entries would otherwise hold (and send, and print) 100,000
// lines, and its memory would grow with the directory rather than with the page.

/** Changes and problems listed in a report; the others are only counted. */
export const LISTED = 100;

export type SyncChange = { action: string; directoryId: string; dn: string | null };

export type SyncSummary = {
  mode: 'full' | 'incremental';
  dryRun: boolean;
  created: number;
  updated: number;
  disabled: number;
  errors: number;
  /** One line per error, naming the entry (DNs, no emails): the first LISTED of them. */
  problems: string[];
  /** Errors beyond those `problems` lists. */
  problemsOmitted: number;
  /** What changed (or would, in a dry run): the first LISTED changes. */
  changes: SyncChange[];
  /** Changes beyond those `changes` lists. */
  changesOmitted: number;
};

export function emptySummary(mode: SyncSummary['mode'], dryRun: boolean): SyncSummary {
  return {
    mode,
    dryRun,
    created: 0,
    updated: 0,
    disabled: 0,
    errors: 0,
    problems: [],
    problemsOmitted: 0,
    changes: [],
    changesOmitted: 0,
  };
}

/** Lists a change, or counts it as omitted once LISTED are listed. */
export function listChange(summary: SyncSummary, change: SyncChange): void {
  if (summary.changes.length < LISTED) summary.changes.push(change);
  else summary.changesOmitted++;
}

/** Counts an error, and lists its line while fewer than LISTED are. */
export function listProblem(summary: SyncSummary, line: string): void {
  summary.errors++;
  if (summary.problems.length < LISTED) summary.problems.push(line);
  else summary.problemsOmitted++;
}
