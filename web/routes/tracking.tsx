/*
 * The tracking centre's page: one search answers "where is my mail?" for support and users.
 * Refused transactions say when, at which stage, by which check and with which words; accepted
 * ones their queue id, verdict and, per recipient, the quarantine or every delivery attempt
 * and the final state. Everyone sees only their scope (tracking/search.ts): an end user the
 * mail to and from their own addresses.
 */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { parseTime, Tracking, type TrackFilter } from '../../appliance/tracking/search'
import { type Env, requireLogin } from '../security'
import { Layout, when } from '../views/layout'

const FIELDS = [
  ['from', 'Sender contains'],
  ['to', 'Recipient contains'],
  ['ip', 'Client address'],
  ['since', 'Since (2026-12-01, 2h, 3d)'],
  ['until', 'Until'],
  ['queue', 'Queue id'],
  ['msgid', 'Message-ID'],
] as const

export function trackingRoutes(deps: { db: Db }): Hono<Env> {
  const app = new Hono<Env>()
  const tracking = new Tracking(deps.db)
  app.use('/tracking', requireLogin(['appliance_admin', 'msp_admin', 'org_admin', 'user']))

  app.get('/tracking', (c) => {
    const session = c.get('session')!
    const q = Object.fromEntries(FIELDS.map(([k]) => [k, (c.req.query(k) ?? '').trim()])) as Record<(typeof FIELDS)[number][0], string>
    let error: string | null = null
    const filter: TrackFilter = { from: q.from || undefined, to: q.to || undefined, ip: q.ip || undefined, queueId: q.queue || undefined, messageId: q.msgid || undefined }
    try {
      if (q.since) filter.since = parseTime(q.since)
      if (q.until) filter.until = parseTime(q.until)
    } catch (err) {
      error = (err as Error).message
    }
    const rows = error ? [] : tracking.search(filter, c.get('scope')!)
    return c.html(
      <Layout title="Tracking" session={session}>
        <h1>Where is my mail?</h1>
        <form method="get" action="/tracking" class="filters" role="search">
          {FIELDS.map(([k, label]) => <input name={k} value={q[k]} placeholder={label} aria-label={label} />)}
          <button type="submit">Search</button>
        </form>
        {error && <p class="error" role="alert">{error}</p>}
        <p class="muted">The last 7 days unless a time is given; newest first, at most 100.</p>
        <table id="tracking">
          <thead><tr><th>When</th><th>Outcome</th><th>From</th><th>To</th><th>Client</th><th>Details</th></tr></thead>
          <tbody>
            {rows.map((t) => (
              <tr class={t.outcome}>
                <td>{when(t.at)}</td>
                <td>{t.refusal ? `refused ${t.refusal.code}` : `${t.verdict} ${t.score?.toFixed(1)}`}</td>
                <td>{t.mailFrom || '<>'}</td>
                <td>
                  {t.recipients.map((r) => (
                    <div>
                      {r.address}: <strong>{r.state}</strong>
                      {r.attempts.length > 0 && (
                        <ul class="attempts">
                          {r.attempts.map((a) => <li>{when(a.at)} {a.outcome}{a.mxHost ? ` via ${a.mxHost}` : ''}{a.response ? `: ${a.response}` : ''}</li>)}
                        </ul>
                      )}
                    </div>
                  ))}
                </td>
                <td>{t.clientIp}{t.helo ? ` (${t.helo})` : ''}</td>
                <td>
                  {t.refusal ? `at ${t.refusal.stage} by ${t.refusal.by}: ${t.refusal.reason}` : <>queue id <code>{t.id}</code>{t.subject ? ` · ${t.subject}` : ''}{t.org ? ` · ${t.org}` : ''}</>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {!rows.length && !error && <p>Nothing found.</p>}
      </Layout>,
    )
  })
  return app
}
