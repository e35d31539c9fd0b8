/*
 * Delivery monitoring: every attempt to hand a message to another server, classified so an
 * admin can show whose side a delay is on — theirs (refusing, out of resources, greylisting),
 * the network's (timeouts, dropped connections) or ours (our address on a blocklist). Raw
 * attempts are kept for a window; a per destination IP, per hour roll-up is kept long.
 */
import type { Db } from '../db/database'
import type { GroupCommitter } from '../db/group-commit'

const HOUR_MS = 3_600_000

export type Outcome = 'delivered' | 'deferred' | 'bounced' | 'failed'
export type AttemptClass =
  | 'ok' | 'refused' | 'timeout' | 'dropped' | 'resources' | 'greylisted' | 'rbl' | 'tls' | 'dns' | 'rejected' | 'deferred'

export const CLASSES: Record<AttemptClass, { side: 'theirs' | 'ours' | 'network' | 'none'; reason: string }> = {
  ok: { side: 'none', reason: 'delivered' },
  refused: { side: 'theirs', reason: 'connection refused: their server is down or its firewall rejects us' },
  timeout: { side: 'network', reason: 'timed out: a firewall dropping our packets, or too little bandwidth' },
  dropped: { side: 'network', reason: 'connection dropped mid-session' },
  resources: { side: 'theirs', reason: 'their server is short of resources (452 storage, 421 too many connections)' },
  greylisted: { side: 'theirs', reason: 'greylisting: deferred on purpose, passes on retry' },
  rbl: { side: 'ours', reason: 'rejected because our address is on a blocklist' },
  tls: { side: 'theirs', reason: 'TLS could not be negotiated' },
  dns: { side: 'theirs', reason: 'DNS: no usable MX for the domain' },
  rejected: { side: 'theirs', reason: 'rejected by their policy or for the recipient' },
  deferred: { side: 'theirs', reason: 'deferred by their server' },
}

const RBL_TEXT = /spamhaus|spamcop|barracuda|sorbs|\bbl\.|blocklist|blacklist|block ?list|black ?list|\brbl\b|dnsbl|listed (at|on|in)|reputation/i
const GREY_TEXT = /grey ?list|gray ?list|greylisted|try again later|please retry later|temporarily (deferred|rejected)/i

export function classify(outcome: Outcome, code: number | null, text: string): AttemptClass {
  if (outcome === 'delivered') return 'ok'
  if (/ECONNREFUSED|connection refused/i.test(text)) return 'refused'
  if (/timed out|timeout|ETIMEDOUT/i.test(text)) return 'timeout'
  if (/ECONNRESET|EPIPE|socket hang up|connection (closed|reset|ended)|remote end closed|unexpected (end|close)/i.test(text)) return 'dropped'
  if (/\bTLS\b|certificate|handshake/i.test(text) && !code) return 'tls'
  if (/No MX|No Such Domain|DNS|ENOTFOUND|Nowhere to deliver|NULL MX/i.test(text) && !code) return 'dns'
  if (code && RBL_TEXT.test(text)) return 'rbl'
  if (code === 452 || code === 421 || /insufficient (system )?storage|too many (connections|concurrent)|out of (memory|resources)/i.test(text)) return 'resources'
  if (code && code >= 400 && code < 500 && GREY_TEXT.test(text)) return 'greylisted'
  if (code && code >= 500) return 'rejected'
  if (outcome === 'bounced') return 'rejected'
  return 'deferred'
}

export function smtpCode(text: string): number | null {
  const m = /(?:^|\s|:)([245][0-5]\d)(?:[\s-]|$)/.exec(text)
  return m ? Number(m[1]) : null
}

export interface Attempt {
  at: number
  queueId: string
  direction: 'in' | 'out'
  domain: string
  mxHost: string | null
  ip: string | null
  port: number | null
  tls: boolean
  outcome: Outcome
  code: number | null
  response: string
  connectMs: number | null
  totalMs: number | null
  attempt: number
  recipients: number
  /** the stored message it delivers (messages.id), for the tracking centre; null for mail Moat did not store */
  messageId?: number | null
}

export interface IpStats {
  ip: string
  domain: string
  attempts: number
  delivered: number
  deferred: number
  bounced: number
  failed: number
  refused: number
  timeouts: number
  dropped: number
  resources: number
  greylisted: number
  rbl: number
  avg_connect_ms: number | null
  avg_total_ms: number | null
  max_total_ms: number
  /** The problems seen, worst first, each with whose side it is on. */
  diagnosis: { class: AttemptClass; count: number; side: string; reason: string }[]
}

const COLUMN: Partial<Record<AttemptClass, string>> = { refused: 'refused', timeout: 'timeouts', dropped: 'dropped', resources: 'resources', greylisted: 'greylisted', rbl: 'rbl' }

// The hourly roll-up keeps one row per IP and hour, with the domains that IP served in it (a
// comma-separated list: a shared host serves many customers' domains); for one
// domain the same columns are computed from the raw attempts (kept for the raw window).
const ONE_DOMAIN = `SELECT coalesce(ip, '-') AS ip, at / ${HOUR_MS} AS hour, domain, 1 AS attempts,
  outcome = 'delivered' AS delivered, outcome = 'deferred' AS deferred, outcome = 'bounced' AS bounced, outcome = 'failed' AS failed,
  class = 'refused' AS refused, class = 'timeout' AS timeouts, class = 'dropped' AS dropped, class = 'resources' AS resources,
  class = 'greylisted' AS greylisted, class = 'rbl' AS rbl, coalesce(connect_ms, 0) AS connect_ms_sum,
  connect_ms IS NOT NULL AS connect_count, coalesce(total_ms, 0) AS total_ms_sum, coalesce(total_ms, 0) AS total_ms_max
  FROM delivery_attempts WHERE domain = @domain AND at >= @since * ${HOUR_MS}`

const statsOver = (source: string) => `SELECT ip, group_concat(DISTINCT domain) AS domain, sum(attempts) AS attempts, sum(delivered) AS delivered,
    sum(deferred) AS deferred, sum(bounced) AS bounced, sum(failed) AS failed, sum(refused) AS refused,
    sum(timeouts) AS timeouts, sum(dropped) AS dropped, sum(resources) AS resources, sum(greylisted) AS greylisted,
    sum(rbl) AS rbl, sum(connect_ms_sum) AS connect_ms_sum, sum(connect_count) AS connect_count,
    sum(total_ms_sum) AS total_ms_sum, max(total_ms_max) AS max_total_ms
  FROM ${source} WHERE hour >= @since AND (@ip IS NULL OR ip = @ip) GROUP BY ip ORDER BY sum(attempts) - sum(delivered) DESC, ip`

const hourlyOver = (source: string) => `SELECT * FROM ${source} WHERE hour >= @since AND (@ip IS NULL OR ip = @ip) ORDER BY hour, ip`

export class DeliveryMonitor {
  private readonly q

  constructor(
    private readonly db: Db,
    private readonly committer?: GroupCommitter,
  ) {
    this.q = {
      insert: db.prepare(
        `INSERT INTO delivery_attempts (at, queue_id, direction, domain, mx_host, ip, port, tls, outcome, class, code, response,
           connect_ms, total_ms, attempt, recipients, message_id)
         VALUES (@at, @queueId, @direction, @domain, @mxHost, @ip, @port, @tls, @outcome, @class, @code, @response,
           @connectMs, @totalMs, @attempt, @recipients, @messageId)`,
      ),
      rollup: db.prepare(
        `INSERT INTO delivery_hourly (ip, hour, domain, attempts, delivered, deferred, bounced, failed, refused, timeouts, dropped,
           resources, greylisted, rbl, connect_ms_sum, connect_count, total_ms_sum, total_ms_max)
         VALUES (@ip, @hour, @domain, 1, @delivered, @deferred, @bounced, @failed, @refused, @timeouts, @dropped, @resources,
           @greylisted, @rbl, @connectMs, @connectCount, @totalMs, @totalMs)
         ON CONFLICT (ip, hour) DO UPDATE SET attempts = attempts + 1, delivered = delivered + @delivered,
           domain = CASE WHEN instr(',' || domain || ',', ',' || @domain || ',') > 0 OR length(domain) > 2000 THEN domain ELSE domain || ',' || @domain END,
           deferred = deferred + @deferred, bounced = bounced + @bounced, failed = failed + @failed, refused = refused + @refused,
           timeouts = timeouts + @timeouts, dropped = dropped + @dropped, resources = resources + @resources,
           greylisted = greylisted + @greylisted, rbl = rbl + @rbl, connect_ms_sum = connect_ms_sum + @connectMs,
           connect_count = connect_count + @connectCount, total_ms_sum = total_ms_sum + @totalMs,
           total_ms_max = max(total_ms_max, @totalMs)`,
      ),
      classes: db.prepare(
        `SELECT ip, class, count(*) AS n FROM delivery_attempts WHERE at >= @since AND (@ip IS NULL OR ip = @ip)
           AND (@domain IS NULL OR domain = @domain) AND class <> 'ok'
         GROUP BY ip, class`,
      ),
      recent: db.prepare(
        `SELECT * FROM delivery_attempts WHERE (@ip IS NULL OR ip = @ip) ORDER BY id DESC LIMIT @limit`,
      ),
      stats: db.prepare(statsOver('delivery_hourly')),
      statsForDomain: db.prepare(statsOver(`(${ONE_DOMAIN})`)),
      hourly: db.prepare(hourlyOver('delivery_hourly')),
      hourlyForDomain: db.prepare(hourlyOver(`(${ONE_DOMAIN})`)),
      purge: db.prepare(`DELETE FROM delivery_attempts WHERE at < ?`),
      purgeHourly: db.prepare(`DELETE FROM delivery_hourly WHERE hour < ?`),
    }
  }

  private write(a: Attempt): void {
    const cls = classify(a.outcome, a.code, a.response)
    this.q.insert.run({ ...a, messageId: a.messageId ?? null, tls: a.tls ? 1 : 0, class: cls, response: a.response.slice(0, 500) })
    const counts: Record<string, number> = { refused: 0, timeouts: 0, dropped: 0, resources: 0, greylisted: 0, rbl: 0 }
    const col = COLUMN[cls]
    if (col) counts[col] = 1
    this.q.rollup.run({
      ip: a.ip ?? '-',
      hour: Math.floor(a.at / HOUR_MS),
      domain: a.domain,
      delivered: a.outcome === 'delivered' ? 1 : 0,
      deferred: a.outcome === 'deferred' ? 1 : 0,
      bounced: a.outcome === 'bounced' ? 1 : 0,
      failed: a.outcome === 'failed' ? 1 : 0,
      ...counts,
      connectMs: a.connectMs ?? 0,
      connectCount: a.connectMs === null ? 0 : 1,
      totalMs: a.totalMs ?? 0,
    })
  }

  /** Records an attempt in the next group commit (or at once without a committer). */
  record(a: Attempt): Promise<void> {
    if (this.committer) return this.committer.submit(() => this.write(a))
    this.write(a)
    return Promise.resolve()
  }

  /** Per destination IP; with `domain`, only the attempts for that domain (from the raw window). */
  stats(opts: { hours?: number; ip?: string; domain?: string; now?: number } = {}): IpStats[] {
    const now = opts.now ?? Date.now()
    const hours = opts.hours ?? 24
    const since = Math.floor(now / HOUR_MS) - hours + 1
    const domain = opts.domain?.toLowerCase() ?? null
    const params = domain ? { since, ip: opts.ip ?? null, domain } : { since, ip: opts.ip ?? null }
    const classes = this.q.classes.all({ since: since * HOUR_MS, ip: opts.ip ?? null, domain }) as { ip: string | null; class: AttemptClass; n: number }[]
    return ((domain ? this.q.statsForDomain : this.q.stats).all(params) as Record<string, number | string>[]).map((r) => {
      const diagnosis = classes
        .filter((c) => (c.ip ?? '-') === r.ip)
        .sort((a, b) => b.n - a.n)
        .map((c) => ({ class: c.class, count: c.n, side: CLASSES[c.class].side, reason: CLASSES[c.class].reason }))
      const connectCount = Number(r.connect_count)
      return {
        // Each hour lists its own domains: every domain behind the IP, once.
        ip: String(r.ip), domain: [...new Set(String(r.domain).split(','))].join(','), attempts: Number(r.attempts), delivered: Number(r.delivered),
        deferred: Number(r.deferred), bounced: Number(r.bounced), failed: Number(r.failed), refused: Number(r.refused),
        timeouts: Number(r.timeouts), dropped: Number(r.dropped), resources: Number(r.resources), greylisted: Number(r.greylisted),
        rbl: Number(r.rbl),
        avg_connect_ms: connectCount ? Math.round(Number(r.connect_ms_sum) / connectCount) : null,
        avg_total_ms: Number(r.attempts) ? Math.round(Number(r.total_ms_sum) / Number(r.attempts)) : null,
        max_total_ms: Number(r.max_total_ms),
        diagnosis,
      }
    })
  }

  /** Hourly series for plots. */
  series(opts: { hours?: number; ip?: string; domain?: string; now?: number } = {}): Record<string, unknown>[] {
    const now = opts.now ?? Date.now()
    const since = Math.floor(now / HOUR_MS) - (opts.hours ?? 24) + 1
    const domain = opts.domain?.toLowerCase()
    if (domain) return this.q.hourlyForDomain.all({ since, ip: opts.ip ?? null, domain }) as Record<string, unknown>[]
    return this.q.hourly.all({ since, ip: opts.ip ?? null }) as Record<string, unknown>[]
  }

  recent(opts: { ip?: string; limit?: number } = {}): Record<string, unknown>[] {
    return this.q.recent.all({ ip: opts.ip ?? null, limit: opts.limit ?? 50 }) as Record<string, unknown>[]
  }

  /** Drops raw attempts older than `rawDays` and hourly rows older than `hourlyDays`. */
  purge(rawDays: number, hourlyDays: number, now = Date.now()): { attempts: number; hourly: number } {
    return {
      attempts: this.q.purge.run(now - rawDays * 86_400_000).changes,
      hourly: this.q.purgeHourly.run(Math.floor((now - hourlyDays * 86_400_000) / HOUR_MS)).changes,
    }
  }
}

