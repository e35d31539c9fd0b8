/*
 * Statistics for admins, over the organisations in the session's scope (one, with ?org=):
 * inbound and outbound mail per day by verdict, viruses, and the top senders and recipients.
 * Counted from the archive's message rows (one per organisation a message was for).
 */
import { Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { MailStats, VERDICTS, type Verdict } from '../../appliance/stats/mail-stats'
import { type Env, requireLogin } from '../security'
import { type Series, StackedBars, verdictClass } from '../views/chart'
import { Layout } from '../views/layout'

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
    const stats = new MailStats(deps.db)
    const sees = { orgIds, userId: null, addresses: [] }
    const daily = stats.daily(sees, days)
    const since = Date.parse(`${daily.days[0]}T00:00:00Z`)
    const labels = daily.days.map((d) => d.slice(5))
    const series = (direction: 'in' | 'out'): Series[] =>
      VERDICTS.map((verdict) => ({ name: verdict, cls: verdictClass(verdict), values: daily[direction][verdict] }))
    const total = (direction: 'in' | 'out', verdict?: Verdict) => (verdict ? [verdict] : [...VERDICTS]).reduce((s, v) => s + daily[direction][v].reduce((a, n) => a + n, 0), 0)
    const virusTotal = daily.viruses.reduce((s, n) => s + n, 0)
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
        <StackedBars title="Viruses per day" labels={labels} series={[{ name: 'virus', cls: 's-fail', values: daily.viruses }]} />
        <Top title="Top senders (inbound)" id="top-senders" rows={stats.top(sees, 'sender', since, TOP)} />
        <Top title="Top recipients (inbound)" id="top-recipients" rows={stats.top(sees, 'recipient', since, TOP)} />
        <Top title="Top senders (outbound)" id="top-outbound" rows={stats.top(sees, 'outbound-sender', since, TOP)} />
      </Layout>,
    )
  })
  return app
}
