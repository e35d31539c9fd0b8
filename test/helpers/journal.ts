/*
 * Real journal files for the agent's journald reader: journald's export format written by
 * systemd-journal-remote (Debian package systemd-journal-remote), read by the real journalctl.
 */
import { spawnSync } from 'node:child_process'
import path from 'node:path'

export const JOURNAL_REMOTE = '/lib/systemd/systemd-journal-remote'
const BOOT = '0123456789abcdef0123456789abcdef'
let mono = 1000

export interface JournalLine {
  at: number
  priority: number
  unit?: string
  ident?: string
  message: string
}

/** Appends entries to `dir`/remote.journal (made if missing). */
export function writeJournal(dir: string, entries: JournalLine[]): void {
  const text = entries
    .map((e) =>
      [
        `__REALTIME_TIMESTAMP=${e.at * 1000}`, `__MONOTONIC_TIMESTAMP=${(mono += 1000)}`, `_BOOT_ID=${BOOT}`, `PRIORITY=${e.priority}`,
        ...(e.unit ? [`_SYSTEMD_UNIT=${e.unit}`] : []), ...(e.ident ? [`SYSLOG_IDENTIFIER=${e.ident}`] : []), `MESSAGE=${e.message}`, '', '',
      ].join('\n'),
    )
    .join('')
  const r = spawnSync(JOURNAL_REMOTE, ['-o', path.join(dir, 'remote.journal'), '-'], { input: text })
  if (r.status !== 0) throw new Error(`systemd-journal-remote: ${r.stderr}`)
}
