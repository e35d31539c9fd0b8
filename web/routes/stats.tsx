/*
 * Statistics for admins, over the organisations in the session's scope (one, with ?org=):
 * inbound and outbound mail per day by verdict, viruses, and the top senders and recipients.
 * Counted from the archive's message rows (one per organisation a message was for).
 */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { whereIn } from '../../appliance/db/sql'
import { type Env, requireLogin } from '../security'
import { type Series, StackedBars } from '../views/chart'
import { Layout } from '../views/layout'

const DAY = 86_400_000
const TOP = 10

export function statsRoutes(deps: { db: Db }): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/stats', requireLogin(['appliance_admin', 'msp_admin', 'org_admin']))

  app.get('/stats', (c) => {
    const scope = c.get('scope')!
    const days = Math.min(90, Math.max(1, Number(c.req.query('days')) || 14))
    const wanted = Number(c.req.query('org'))
    let orgIds = scope.orgIds
    if (Number.isInteger(wanted) && wanted > 0) {
      if (orgIds !== null && !orgIds.includes(wanted)) return c.notFound()
      orgIds = [wanted]
    }
    const today = Math.floor(Date.now() / DAY)
    const since = (today - days + 1) * DAY
    const where = ['m.received_at >= ?']
    const args: unknown[] = [since]
    if (orgIds) {
      const w = whereIn('m.org_id', orgIds)
      where.push(w.sql)
      args.push(...w.args)
    }
    const sql = where.join(' AND ')
    const byDay = deps.db
      .prepare(`SELECT m.received_at / ${DAY} AS day, m.direction, m.verdict, count(*) AS n FROM messages m WHERE ${sql} GROUP BY 1, 2, 3`)
      .all(...args) as { day: number; direction: 'in' | 'out'; verdict: string; n: number }[]
    const viruses = deps.db
      .prepare(`SELECT q.created_at / ${DAY} AS day, count(*) AS n FROM quarantine q JOIN messages m ON m.id = q.message_id WHERE ${sql} AND q.reason = 'virus' GROUP BY 1`)
      .all(...args) as { day: number; n: number }[]
    const top = (col: string, direction: string) =>
      deps.db
        .prepare(`SELECT ${col} AS who, count(*) AS n, sum(m.verdict <> 'clean') AS spam FROM messages m WHERE ${sql} AND m.direction = ? GROUP BY 1 ORDER BY n DESC LIMIT ${TOP}`)
        .all(...args, direction) as { who: string; n: number; spam: number }[]

    const labels = Array.from({ length: days }, (_, i) => new Date((today - days + 1 + i) * DAY).toISOString().slice(5, 10))
    const series = (direction: 'in' | 'out'): Series[] =>
      (['clean', 'spam', 'surespam'] as const).map((verdict) => ({
        name: verdict,
        cls: verdict === 'clean' ? 's-ok' : verdict === 'spam' ? 's-defer' : 's-fail',
        values: labels.map((_, i) => byDay.find((r) => r.day === today - days + 1 + i && r.direction === direction && r.verdict === verdict)?.n ?? 0),
      }))
    const total = (direction: string, verdict?: string) => byDay.filter((r) => r.direction === direction && (!verdict || r.verdict === verdict)).reduce((s, r) => s + r.n, 0)
    const virusTotal = viruses.reduce((s, r) => s + r.n, 0)
    const Top = (props: { title: string; id: string; rows: { who: string; n: number; spam: number }[] }) => (
      <>
        <h2>{props.title}</h2>
        <table id={props.id}>
          <thead><tr><th>Address</th><th class="num">Messages</th><th class="num">Spam</th></tr></thead>
          <tbody>{props.rows.map((r) => <tr><td>{r.who || '<>'}</td><td class="num">{r.n}</td><td class="num">{r.spam}</td></tr>)}</tbody>
        </table>
      </>
    )
    return c.html(
      <Layout title="Statistics" session={c.get('session')}>
        <h1>Statistics, last {days} days</h1>
        <table id="totals">
          <thead><tr><th></th><th class="num">All</th><th class="num">Clean</th><th class="num">Spam</th><th class="num">Surespam</th></tr></thead>
          <tbody>
            {(['in', 'out'] as const).map((d) => (
              <tr><th>{d === 'in' ? 'Inbound' : 'Outbound'}</th><td class="num">{total(d)}</td><td class="num">{total(d, 'clean')}</td><td class="num">{total(d, 'spam')}</td><td class="num">{total(d, 'surespam')}</td></tr>
            ))}
            <tr><th>Viruses quarantined</th><td class="num">{virusTotal}</td><td></td><td></td><td></td></tr>
          </tbody>
        </table>
        <StackedBars title="Inbound per day" labels={labels} series={series('in')} />
        <StackedBars title="Outbound per day" labels={labels} series={series('out')} />
        <StackedBars title="Viruses per day" labels={labels} series={[{ name: 'virus', cls: 's-fail', values: labels.map((_, i) => viruses.find((r) => r.day === today - days + 1 + i)?.n ?? 0) }]} />
        <Top title="Top senders (inbound)" id="top-senders" rows={top('m.mail_from', 'in')} />
        <Top title="Top recipients (inbound)" id="top-recipients" rows={top('m.rcpt_to', 'in')} />
        <Top title="Top senders (outbound)" id="top-outbound" rows={top("coalesce(m.sender_login, m.mail_from)", 'out')} />
      </Layout>,
    )
  })
  return app
}
