/*
 * Log lines the agents send (journald on Linux, the System and Application event logs on
 * Windows), kept LOG_KEEP_DAYS and searched per host. Priorities are syslog's (0 emergency …
 * 7 debug); Windows levels are mapped onto them by the agent (agent/logs.ts).
 */
import type { Db } from '../db/database'
import { FleetError } from './errors'

export interface LogEntry {
  at: number
  priority: number
  /** the unit or program (journald), or "Channel/Provider" (Windows) */
  source: string
  message: string
}

export const LOG_KEEP_DAYS = 14
export const MAX_LOG_ENTRIES = 500
const MAX_MESSAGE = 4000

export const PRIORITY_NAMES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const

/** Checks a logs report's entries before anything of its batch is stored. */
export function validLogEntries(data: unknown): LogEntry[] {
  const entries = (data as { entries?: unknown })?.entries
  if (!Array.isArray(entries)) throw new FleetError('a logs report needs entries: [...]')
  if (entries.length > MAX_LOG_ENTRIES) throw new FleetError(`at most ${MAX_LOG_ENTRIES} log entries a report`, 413)
  return entries.map((e: Partial<LogEntry>) => {
    if (!Number.isSafeInteger(e?.at) || !Number.isInteger(e?.priority) || e!.priority! < 0 || e!.priority! > 7 || typeof e?.message !== 'string') {
      throw new FleetError('each log entry needs at (ms), priority (0-7) and message')
    }
    return { at: e!.at!, priority: e!.priority!, source: String(e!.source ?? '').slice(0, 200), message: e!.message!.slice(0, MAX_MESSAGE) }
  })
}

export class FleetLogs {
  constructor(private readonly db: Db) {}

  /** The entries of one logs report (inside the caller's transaction), with its sequence number. */
  add(hostId: number, seq: number, entries: LogEntry[]): void {
    const add = this.db.prepare(`INSERT INTO fleet_logs (host_id, seq, at, priority, source, message) VALUES (?, ?, ?, ?, ?, ?)`)
    for (const e of entries) add.run(hostId, seq, e.at, e.priority, e.source, e.message)
  }

  /** Newest first: words in the message or source, at this priority or more urgent, since `from`. */
  search(hostId: number, opts: { q?: string; maxPriority?: number; from?: number; limit?: number } = {}): (LogEntry & { id: number })[] {
    const where = ['host_id = ?', 'at >= ?', 'priority <= ?']
    const args: unknown[] = [hostId, opts.from ?? 0, opts.maxPriority ?? 7]
    for (const word of (opts.q ?? '').split(/\s+/).filter(Boolean).slice(0, 8)) {
      where.push(`(instr(lower(message), ?) > 0 OR instr(lower(source), ?) > 0)`)
      args.push(word.toLowerCase(), word.toLowerCase())
    }
    return this.db
      .prepare(`SELECT id, at, priority, source, message FROM fleet_logs WHERE ${where.join(' AND ')} ORDER BY at DESC, id DESC LIMIT ?`)
      .all(...args, Math.min(opts.limit ?? 200, 1000)) as (LogEntry & { id: number })[]
  }

  purge(now = Date.now(), days = LOG_KEEP_DAYS): number {
    return this.db.prepare(`DELETE FROM fleet_logs WHERE at < ?`).run(now - days * 86_400_000).changes
  }
}
