/*
 * Statistics: per day (in and out by verdict, viruses, the busiest senders and recipients)
 * and today's numbers as the home page shows them, for the token's scope or one organisation
 * of it. Counted by MailStats, the same code as the Statistics page and the home page.
 */
import { z } from 'zod'
import type { Scope } from '../../appliance/services/accounts'
import { MailStats, startOfToday } from '../../appliance/stats/mail-stats'
import { Alerts } from '../../appliance/services/alerts'
import type { ApiContext } from './context'

const perVerdict = z.object({ clean: z.array(z.number().int()), spam: z.array(z.number().int()), surespam: z.array(z.number().int()) })
const Top_ = z.array(z.object({ who: z.string(), messages: z.number().int(), spam: z.number().int() }))

export function statisticsEndpoints({ api, db, orgIn }: ApiContext): void {
  const stats = new MailStats(db)
  const alerts = new Alerts(db)
  const narrowed = (scope: Scope, org: string | undefined): Scope => (org ? { ...scope, orgIds: [orgIn(scope, org).id] } : scope)

  api.add({
    method: 'get', path: '/api/v1/admin/statistics', tag: 'statistics', summary: 'Mail per day by direction and verdict, viruses, and the top senders and recipients',
    query: z.object({ org: z.string().optional().describe('one organisation in scope (default: all of them)'), days: z.coerce.number().int().min(1).max(90).optional() }),
    response: z.object({
      days: z.array(z.string()).describe('YYYY-MM-DD, UTC, oldest first; the arrays below follow it'),
      in: perVerdict, out: perVerdict, viruses: z.array(z.number().int()),
      top_senders: Top_, top_recipients: Top_, top_outbound_senders: Top_,
    }),
    run: ({ scope, query }) => {
      const s = narrowed(scope, query.org)
      const daily = stats.daily(s, query.days ?? 14)
      const since = Date.parse(`${daily.days[0]}T00:00:00Z`)
      const top = (who: 'sender' | 'recipient' | 'outbound-sender') => stats.top(s, who, since).map((r) => ({ who: r.who, messages: r.n, spam: r.spam }))
      return { ...daily, top_senders: top('sender'), top_recipients: top('recipient'), top_outbound_senders: top('outbound-sender') }
    },
  })

  api.add({
    method: 'get', path: '/api/v1/admin/statistics/today', tag: 'statistics', summary: "Today's numbers, as the home page shows them",
    query: z.object({ org: z.string().optional() }),
    response: z.object({
      since: z.number(), inbound: z.number().int(), outbound: z.number().int(), spam: z.number().int(), surespam: z.number().int(), viruses: z.number().int(),
      quarantine_waiting: z.number().int(), deliveries_deferred: z.number().int(), deliveries_bounced: z.number().int(), open_alerts: z.number().int(),
    }),
    run: ({ scope, query }) => {
      const s = narrowed(scope, query.org)
      const t = stats.today(s, startOfToday())
      return {
        since: t.since, inbound: t.inbound, outbound: t.outbound, spam: t.spam, surespam: t.surespam, viruses: t.viruses,
        quarantine_waiting: t.quarantineWaiting, deliveries_deferred: t.deferred, deliveries_bounced: t.bounced, open_alerts: alerts.list(s, { limit: 1000 }).length,
      }
    },
  })
}
