/*
 * Quarantine operations for admins: search the entries in scope (newest first, a cursor for
 * the next page), and release, delete or "not spam" (release and teach the classifier) up to
 * 1,000 at a time. Safe to repeat: an entry released already is reported as unchanged, one
 * deleted or outside the token's scope as not found (the same answer: ids say nothing of
 * other tenants), and nothing else happens to either.
 */
import { z } from 'zod'
import { canSeeEntry } from '../../appliance/services/accounts'
import { QUARANTINE_ACTIONS, QuarantineActions } from '../../appliance/quarantine/actions'
import { Quarantine, QuarantineError, type QuarantineEntry } from '../../appliance/services/quarantine'
import type { ApiContext } from './context'

const MAX_ACTION = 1000
const Entry_ = z.object({
  id: z.number().int(), org: z.string(), rcpt: z.string(), direction: z.enum(['in', 'out']), verdict: z.enum(['spam', 'surespam']),
  reason: z.string().describe('score, virus, attachment, backscatter or blocked'), score: z.number(), mail_from: z.string(), from: z.string().nullable(),
  subject: z.string().nullable(), size: z.number().int(), created_at: z.number(), released_at: z.number().nullable(),
})
const view = (e: QuarantineEntry): z.infer<typeof Entry_> => ({
  id: e.id, org: e.org, rcpt: e.rcpt, direction: e.direction, verdict: e.verdict, reason: e.reason, score: e.score, mail_from: e.mail_from, from: e.from_header,
  subject: e.subject, size: e.size, created_at: e.created_at, released_at: e.released_at,
})

export function quarantineEndpoints({ api, db, raws, accounts, orgIn }: ApiContext): void {
  const quarantine = new Quarantine(db)
  const actions = new QuarantineActions({ db, raws, accounts })

  api.add({
    method: 'get', path: '/api/v1/admin/quarantine', tag: 'quarantine', summary: 'Quarantined mail in scope, newest first',
    query: z.object({
      org: z.string().optional(), rcpt: z.string().optional(), sender: z.string().optional().describe('part of the envelope sender or From'), subject: z.string().optional(),
      verdict: z.enum(['spam', 'surespam']).optional(), since: z.coerce.number().int().optional().describe('ms since the epoch'),
      released: z.enum(['yes', 'no']).optional().describe('yes: released entries too'), cursor: z.string().regex(/^\d+\.\d+$/).optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
    response: z.object({ items: z.array(Entry_), next_cursor: z.string().nullable() }),
    run: ({ scope, query }) => {
      const limit = query.limit ?? 100
      const [createdAt, id] = (query.cursor ?? '').split('.').map(Number)
      const rows = quarantine.list({
        orgIds: scope.orgIds, orgId: query.org ? orgIn(scope, query.org).id : undefined, rcpt: query.rcpt, sender: query.sender, subject: query.subject,
        verdict: query.verdict, since: query.since, includeReleased: query.released === 'yes', before: query.cursor ? { createdAt, id } : undefined, limit: limit + 1,
      })
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return { items: page.map(view), next_cursor: rows.length > limit && last ? `${last.created_at}.${last.id}` : null }
    },
  })

  api.add({
    method: 'post', path: '/api/v1/admin/quarantine/actions', tag: 'quarantine',
    summary: `Release, delete or "not spam" (release and learn as wanted mail) up to ${MAX_ACTION.toLocaleString('en')} entries; repeating it changes nothing more`,
    body: z.object({ action: z.enum(QUARANTINE_ACTIONS), ids: z.array(z.number().int()).min(1).max(MAX_ACTION) }),
    response: z.object({ done: z.array(z.number().int()), unchanged: z.array(z.number().int()).describe('released already'), not_found: z.array(z.number().int()) }),
    run: ({ principal, scope, body }) => {
      const out = { done: [] as number[], unchanged: [] as number[], not_found: [] as number[] }
      for (const id of new Set(body.ids)) {
        let e: QuarantineEntry
        try {
          e = quarantine.get(id)
        } catch (err) {
          if (!(err instanceof QuarantineError)) throw err
          out.not_found.push(id)
          continue
        }
        if (!canSeeEntry(scope, e)) {
          out.not_found.push(id)
          continue
        }
        if (actions.act(principal, e, body.action, 'API').outcome !== 'done') {
          out.unchanged.push(id)
          continue
        }
        out.done.push(id)
      }
      return out
    },
  })
}
