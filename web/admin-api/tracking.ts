/* The tracking centre's search: "where is my mail?", in the token's scope. */
import { z } from 'zod'
import { Tracking } from '../../appliance/tracking/search'
import type { ApiContext } from './context'

const Transaction_ = z.object({
  at: z.number(), outcome: z.enum(['accepted', 'refused']), id: z.string(), org: z.string().nullable(), client_ip: z.string().nullable(), mail_from: z.string().nullable(),
  subject: z.string().nullable(), verdict: z.string().nullable(), refusal: z.object({ stage: z.string(), code: z.number(), reason: z.string(), by: z.string() }).nullable(),
  recipients: z.array(z.object({ address: z.string(), state: z.string(), detail: z.string().nullable(), attempts: z.array(z.object({ at: z.number(), outcome: z.string(), code: z.number().nullable(), response: z.string().nullable() })) })),
})


export function trackingEndpoints({ api, db }: ApiContext): void {
  const tracking = new Tracking(db)
  api.add({
    method: 'get', path: '/api/v1/admin/tracking', tag: 'tracking', summary: 'Where is my mail? Transactions in the token\'s scope, newest first (the tracking centre)',
    query: z.object({
      from: z.string().optional(), to: z.string().optional(), ip: z.string().optional(), queue_id: z.string().optional(), message_id: z.string().optional(),
      since: z.coerce.number().int().optional().describe('ms since the epoch (default: 7 days ago)'), until: z.coerce.number().int().optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
    response: z.object({ items: z.array(Transaction_) }),
    run: ({ scope, query }) => ({
      items: tracking
        .search({ from: query.from, to: query.to, ip: query.ip, queueId: query.queue_id, messageId: query.message_id, since: query.since, until: query.until, limit: query.limit }, scope)
        .map((t) => ({
          at: t.at, outcome: t.outcome, id: t.id, org: t.org, client_ip: t.clientIp, mail_from: t.mailFrom, subject: t.subject, verdict: t.verdict, refusal: t.refusal,
          recipients: t.recipients.map((r) => ({ address: r.address, state: r.state, detail: r.detail, attempts: r.attempts.map((a) => ({ at: a.at, outcome: a.outcome, code: a.code, response: a.response })) })),
        })),
    }),
  })
}
