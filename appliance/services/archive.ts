/*
 * LiveArchive search. The query language is a small one users already know from mail
 * clients: words, "quoted phrases", from:, to:, subject:, before:/after:/date: (YYYY-MM-DD).
 * Every user word becomes a quoted FTS5 string, so nothing a user types is FTS syntax.
 */
import type { Db } from '../db/database'
import { whereIn } from '../db/sql'
import { canSeeMessage, type Scope } from './accounts'
import type { RawStore } from './raw-store'

export interface ArchiveHit {
  id: number
  org_id: number
  org: string
  direction: 'in' | 'out'
  received_at: number
  mail_from: string
  rcpt_to: string
  from_header: string | null
  subject: string | null
  size: number
  verdict: string
  score: number
}

export class ArchiveQueryError extends Error {}

/** How far out of step with arrival order a message's timestamp may be (see idBounds). */
export const ID_CLOCK_SLACK_MS = 3_600_000

const FIELDS: Record<string, string> = { from: 'sender', to: 'recipients', subject: 'subject', body: 'body' }

function ftsString(term: string): string {
  const prefix = term.endsWith('*') && term.length > 1
  const bare = prefix ? term.slice(0, -1) : term
  return `"${bare.replace(/"/g, '""')}"${prefix ? '*' : ''}`
}

function parseDay(value: string, key: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value)
  const t = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN
  if (Number.isNaN(t)) throw new ArchiveQueryError(`${key}: wants a date as YYYY-MM-DD, got "${value}"`)
  return t
}

export interface ParsedQuery {
  match: string | null
  after: number | null
  before: number | null
}

export function parseArchiveQuery(query: string): ParsedQuery {
  const parts: string[] = []
  let after: number | null = null
  let before: number | null = null
  const re = /(\w+):(?:"([^"]*)"|(\S+))|"([^"]*)"|(\S+)/g
  let m: RegExpExecArray | null
  while ((m = re.exec(query))) {
    const [, key, qval, val, phrase, word] = m
    if (key) {
      const k = key.toLowerCase()
      const v = qval ?? val ?? ''
      if (k === 'after') after = parseDay(v, k)
      else if (k === 'before') before = parseDay(v, k)
      else if (k === 'date') {
        after = parseDay(v, k)
        before = after + 86_400_000
      } else if (FIELDS[k]) {
        if (v) parts.push(`${FIELDS[k]} : ${ftsString(v)}`)
      } else {
        parts.push(ftsString(`${key}:${v}`))
      }
    } else {
      const term = phrase ?? word ?? ''
      if (term) parts.push(ftsString(term))
    }
  }
  return { match: parts.length ? parts.join(' AND ') : null, after, before }
}

export class Archive {
  constructor(private readonly db: Db, private readonly raws: RawStore) {}

  /**
   * The symbols an inbound message got when it was received, found by its Message-ID among
   * the mail the scope may see; null if it is not archived (or no longer). For a report of
   * spam that was delivered: the copy in the mailbox has our headers added, so only its
   * Message-ID finds it.
   */
  symbolsAtReceipt(messageIdHeader: string, scope: Scope): { name: string }[] | null {
    const rows = this.db
      .prepare(`SELECT org_id, mail_from, rcpt_to, symbols FROM messages WHERE message_id_header = ? AND direction = 'in' ORDER BY id DESC LIMIT 50`)
      .all(messageIdHeader) as { org_id: number; mail_from: string; rcpt_to: string; symbols: string }[]
    const row = rows.find((r) => canSeeMessage(scope, r))
    return row ? JSON.parse(row.symbols) : null
  }

  /**
   * Newest first, in the order mail arrived (message id), a page at a time: `before` is the
   * last id of the previous page. With words, SQLite walks the full-text index from its
   * newest row down and stops once the page is full, so a word in millions of messages costs
   * no more than a rare one: nothing is collected and sorted first. orgIds limits to those
   * organisations (null: all); addresses to messages those addresses sent or received (an end
   * user's own mail). A date (after:, before:) also becomes a bound on the id (idBounds), so
   * the walk starts and ends near the dates instead of at the newest and oldest match.
   */
  search(query: string, opts: { orgId?: number; orgIds?: number[] | null; addresses?: string[]; limit?: number; offset?: number; before?: number } = {}): ArchiveHit[] {
    const pq = parseArchiveQuery(query)
    const where: string[] = []
    const args: unknown[] = []
    const id = pq.match ? 'f.rowid' : 'm.id'
    if (pq.match) {
      where.push('archive_fts MATCH ?')
      args.push(pq.match)
    }
    if (opts.before !== undefined) {
      where.push(`${id} < ?`)
      args.push(opts.before)
    }
    if (opts.orgId !== undefined) {
      where.push('m.org_id = ?')
      args.push(opts.orgId)
    }
    if (opts.orgIds) {
      const w = whereIn('m.org_id', opts.orgIds)
      where.push(w.sql)
      args.push(...w.args)
    }
    if (opts.addresses?.length) {
      where.push(`(${opts.addresses.map(() => `lower(m.mail_from) = ? OR instr(',' || replace(lower(m.rcpt_to), ' ', '') || ',', ?) > 0`).join(' OR ')})`)
      for (const a of opts.addresses) args.push(a.toLowerCase(), `,${a.toLowerCase()},`)
    }
    if (pq.after !== null) {
      where.push('m.received_at >= ?')
      args.push(pq.after)
    }
    if (pq.before !== null) {
      where.push('m.received_at < ?')
      args.push(pq.before)
    }
    const bounds = this.idBounds(pq, opts.orgId !== undefined ? [opts.orgId] : (opts.orgIds ?? null))
    if (bounds.above !== null) {
      where.push(`${id} > ?`)
      args.push(bounds.above)
    }
    if (bounds.below !== null) {
      where.push(`${id} < ?`)
      args.push(bounds.below)
    }
    args.push(opts.limit ?? 50, opts.offset ?? 0)
    const sql = `SELECT m.id, m.org_id, o.name AS org, m.direction, m.received_at, m.mail_from, m.rcpt_to, m.from_header,
        m.subject, m.size, m.verdict, m.score
      FROM ${pq.match ? 'archive_fts f JOIN messages m ON m.id = f.rowid' : 'messages m'} JOIN organisations o ON o.id = m.org_id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY ${id} DESC LIMIT ? OFFSET ?`
    return this.db.prepare(sql).all(...args) as ArchiveHit[]
  }

  /**
   * A date range as an id range. Mail is stamped (received_at) when its DATA ends and gets its
   * id when that commit lands, seconds later at most; so of two messages stamped more than
   * ID_CLOCK_SLACK_MS apart, the later has the higher id. Every message stamped on or after
   * `after` therefore has a higher id than any stamped before `after - slack`, and every one
   * stamped before `before` a lower id than any stamped on or after `before + slack`. One such
   * neighbour per organisation is an index seek on (org_id, received_at); the tightest bound
   * wins (ids are appliance-wide). The dates themselves are still checked row by row.
   */
  private idBounds(pq: ParsedQuery, orgIds: number[] | null): { above: number | null; below: number | null } {
    const bounds = { above: null as number | null, below: null as number | null }
    if (pq.after === null && pq.before === null) return bounds
    const orgs = orgIds ?? (this.db.prepare(`SELECT id FROM organisations`).pluck().all() as number[])
    const lastBefore = this.db.prepare(`SELECT id FROM messages WHERE org_id = ? AND received_at < ? ORDER BY received_at DESC LIMIT 1`).pluck()
    const firstFrom = this.db.prepare(`SELECT id FROM messages WHERE org_id = ? AND received_at >= ? ORDER BY received_at LIMIT 1`).pluck()
    for (const org of orgs) {
      if (pq.after !== null) {
        const id = lastBefore.get(org, pq.after - ID_CLOCK_SLACK_MS) as number | undefined
        if (id !== undefined) bounds.above = Math.max(bounds.above ?? id, id)
      }
      if (pq.before !== null) {
        const id = firstFrom.get(org, pq.before + ID_CLOCK_SLACK_MS) as number | undefined
        if (id !== undefined) bounds.below = Math.min(bounds.below ?? id, id)
      }
    }
    return bounds
  }

  /** The original bytes of message `id`, byte for byte. */
  export(id: number, orgId?: number): Buffer {
    const row = this.db.prepare(`SELECT org_id, raw_id FROM messages WHERE id = ?`).get(id) as
      | { org_id: number; raw_id: number }
      | undefined
    if (!row || (orgId !== undefined && row.org_id !== orgId)) throw new ArchiveQueryError(`no archived message ${id}`)
    return this.raws.read(row.raw_id)
  }

  /**
   * Deletes messages past their organisation's archive retention that nothing else needs
   * (no quarantine entry, no delivery still in flight), then their raw bytes once no other
   * message row shares them.
   */
  async purge(now = Date.now(), batch = 1000): Promise<number> {
    const expired = this.db
      .prepare(
        `SELECT m.id, m.raw_id, m.delivered_raw_id FROM messages m JOIN organisations o ON o.id = m.org_id
         WHERE m.received_at < ? - o.archive_retention_days * 86400000
           AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.message_id = m.id)
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state IN ('pending', 'queued', 'deferred'))
         LIMIT ?`,
      )
      .all(now, batch) as { id: number; raw_id: number; delivered_raw_id: number | null }[]
    await this.drop(expired)
    return expired.length
  }

  /**
   * Deletes every message of an organisation that is being removed, with its index entries,
   * quarantine and deliveries, and raw bytes no other organisation's copy shares. In batches,
   * each its own transaction, so the SMTP path's commits get their turn in between.
   */
  async dropOrganisation(orgId: number, batch = 2000): Promise<number> {
    const next = this.db.prepare(`SELECT id, raw_id, delivered_raw_id FROM messages WHERE org_id = ? LIMIT ?`)
    let dropped = 0
    for (;;) {
      const rows = next.all(orgId, batch) as { id: number; raw_id: number; delivered_raw_id: number | null }[]
      if (!rows.length) return dropped
      await this.drop(rows)
      dropped += rows.length
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /** One transaction: the rows, their FTS entries (contentless: by rowid), unshared raw bytes. */
  private async drop(rows: { id: number; raw_id: number; delivered_raw_id: number | null }[]): Promise<void> {
    if (!rows.length) return
    const delFts = this.db.prepare(`DELETE FROM archive_fts WHERE rowid = ?`)
    const delMsg = this.db.prepare(`DELETE FROM messages WHERE id = ?`)
    const files = this.db.transaction(() => {
      for (const e of rows) {
        delFts.run(e.id)
        delMsg.run(e.id)
      }
      return this.raws.dropUnreferenced(rows.flatMap((e) => (e.delivered_raw_id ? [e.raw_id, e.delivered_raw_id] : [e.raw_id])))
    })()
    await this.raws.removeFiles(files)
  }
}
