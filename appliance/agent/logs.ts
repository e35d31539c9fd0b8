/*
 * Log lines for the console, read by the operating system's own tools (no hand-written
 * journal or EVTX parser): `journalctl -o json` on Linux, PowerShell's Get-WinEvent on
 * Windows. Where to go on from (journald's cursor; each Windows channel's last EventRecordID,
 * as Grafana Alloy's bookmark keeps it) is saved in the agent's database in the same
 * transaction as the report it led to (state.enqueue), so a crash neither skips nor repeats.
 */
import { execFile } from 'node:child_process'
import type { LogEntry } from '../fleet/logs'

/** At most this many lines a read: the rest waits for the next run (a report stays small). */
export const LOG_BATCH = 500

export interface LogRead {
  entries: LogEntry[]
  /** what to save, as the state's config key and value, with the report */
  position: { key: string; value: string } | null
}

export const JOURNAL_CURSOR_KEY = 'journal-cursor'

function run(cmd: string, args: string[], maxLines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, out) => {
      // Killed by us once enough lines came: what we have is what we asked for.
      if (err && !child.killed) return reject(new Error(`${cmd} failed: ${String(err.message).split('\n')[0]}`))
      resolve(out.split('\n').filter(Boolean).slice(0, maxLines))
    })
    let lines = 0
    child.stdout?.on('data', (d: Buffer) => {
      lines += d.toString('latin1').split('\n').length - 1
      if (lines > maxLines + 1) child.kill()
    })
  })
}

/** journald's fields as journalctl prints them; MESSAGE may be a byte array when not UTF-8. */
interface JournalRecord {
  __CURSOR: string
  __REALTIME_TIMESTAMP: string
  PRIORITY?: string
  MESSAGE?: string | number[] | null
  SYSLOG_IDENTIFIER?: string
  _SYSTEMD_UNIT?: string
  _COMM?: string
}

export function journalEntry(r: JournalRecord): LogEntry {
  const message = Array.isArray(r.MESSAGE) ? Buffer.from(r.MESSAGE).toString('utf8') : String(r.MESSAGE ?? '')
  const priority = Number(r.PRIORITY)
  return {
    at: Math.floor(Number(r.__REALTIME_TIMESTAMP) / 1000),
    priority: Number.isInteger(priority) && priority >= 0 && priority <= 7 ? priority : 6,
    source: r._SYSTEMD_UNIT ?? r.SYSLOG_IDENTIFIER ?? r._COMM ?? '',
    message,
  }
}

/**
 * journald entries at `maxPriority` or more urgent since the saved cursor; on the first run,
 * those of the last hour (a new agent does not send a server's whole history).
 * `directory`: a journal folder other than the system's (journalctl --directory).
 *
 * The priority is filtered here, not by journalctl -p: the cursor then marks what was read,
 * not only what was sent, so a console that later asks for more (info lines) gets them from
 * that moment on, not an old backlog. `read` says how many lines were read, sent or not.
 */
export async function readJournal(cursor: string | null, maxPriority: number, opts: { directory?: string; limit?: number } = {}): Promise<LogRead & { read: number }> {
  const limit = opts.limit ?? LOG_BATCH
  const args = ['-o', 'json', '--no-pager', '--output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,_SYSTEMD_UNIT,_COMM']
  if (opts.directory) args.push(`--directory=${opts.directory}`)
  args.push(cursor ? `--after-cursor=${cursor}` : '--since=-1h')
  const lines = await run('journalctl', args, limit)
  const records = lines.map((l) => JSON.parse(l) as JournalRecord)
  if (!records.length) return { entries: [], position: null, read: 0 }
  return {
    entries: records.map(journalEntry).filter((e) => e.priority <= maxPriority),
    position: { key: JOURNAL_CURSOR_KEY, value: records[records.length - 1].__CURSOR },
    read: records.length,
  }
}

/** Windows event levels onto syslog priorities: Critical 1 → crit, Error 2 → err, Warning 3 → warning. */
export function windowsPriority(level: number): number {
  return ({ 1: 2, 2: 3, 3: 4, 4: 6, 0: 6, 5: 7 } as Record<number, number>)[level] ?? 6
}

/** One event as `Get-WinEvent … | Select-Object … | ConvertTo-Json` prints it. */
export interface WinEventJson {
  RecordId: number
  TimeCreated: string
  Level: number
  ProviderName?: string
  LogName?: string
  Message?: string | null
}

/**
 * TimeCreated as ConvertTo-Json writes a DateTime: "/Date(1700000000000)/" in Windows
 * PowerShell 5.1 (the one every Windows Server has), an ISO 8601 string in PowerShell 7.
 */
export function winEventTime(v: string): number {
  const m = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/.exec(v)
  return m ? Number(m[1]) : Date.parse(v)
}

/** The events of one channel's ConvertTo-Json output (one object, an array, or nothing) and the newest record id. */
export function parseWinEvents(json: string, channel: string): { entries: LogEntry[]; lastRecordId: number | null } {
  const text = json.trim()
  if (!text) return { entries: [], lastRecordId: null }
  const parsed = JSON.parse(text) as WinEventJson | WinEventJson[]
  const events = (Array.isArray(parsed) ? parsed : [parsed]).sort((a, b) => a.RecordId - b.RecordId)
  return {
    entries: events.map((e) => ({
      at: winEventTime(e.TimeCreated),
      priority: windowsPriority(e.Level),
      source: `${e.LogName ?? channel}/${e.ProviderName ?? ''}`,
      message: String(e.Message ?? '').trim(),
    })),
    lastRecordId: events.length ? events[events.length - 1].RecordId : null,
  }
}

/** The PowerShell that reads a channel's events after a record id, at Warning or worse. */
export function winEventCommand(channel: string, afterRecordId: number, maxLevel: number, limit = LOG_BATCH): string {
  const levels = [1, 2, 3, 4, 5].filter((l) => l <= maxLevel).map((l) => `Level=${l}`).join(' or ')
  const xpath = `*[System[(${levels}) and EventRecordID > ${afterRecordId}]]`
  return (
    `Get-WinEvent -LogName '${channel}' -FilterXPath '${xpath}' -MaxEvents ${limit} -Oldest -ErrorAction SilentlyContinue | ` +
    `Select-Object RecordId, TimeCreated, Level, ProviderName, LogName, Message | ConvertTo-Json -Compress`
  )
}

/** Syslog priorities onto the Windows levels to ask for: warning (4) and worse is Level 1–3. */
export function windowsMaxLevel(maxPriority: number): number {
  return maxPriority >= 6 ? 4 : maxPriority >= 4 ? 3 : maxPriority >= 3 ? 2 : 1
}

export const WINDOWS_CHANNELS = ['System', 'Application'] as const

/** One channel's new events on Windows (the position is that channel's last record id). */
export async function readWindowsChannel(channel: string, afterRecordId: number | null, maxPriority: number): Promise<LogRead> {
  // A first run starts at the newest event: a new agent does not send years of history.
  if (afterRecordId === null) {
    const newest = await runPowerShell(`(Get-WinEvent -LogName '${channel}' -MaxEvents 1 -ErrorAction SilentlyContinue).RecordId`)
    const id = Number(newest.trim()) || 0
    return { entries: [], position: { key: `eventlog:${channel}`, value: String(id) } }
  }
  const out = await runPowerShell(winEventCommand(channel, afterRecordId, windowsMaxLevel(maxPriority)))
  const r = parseWinEvents(out, channel)
  return { entries: r.entries, position: r.lastRecordId === null ? null : { key: `eventlog:${channel}`, value: String(r.lastRecordId) } }
}

function runPowerShell(script: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', script], { maxBuffer: 64 * 1024 * 1024, timeout: 120_000, windowsHide: true }, (err, out) =>
      err ? reject(new Error(`PowerShell failed: ${String(err.message).split('\n')[0]}`)) : resolve(out),
    ),
  )
}
