/*
 * /api/v1: the JSON API the client agents (Outlook add-in, desktop notifier) use, on the same
 * permission model as the UI. Authentication is a per-user token in an Authorization: Bearer
 * header (made on the account page); cookies are ignored here, so there is nothing for CSRF
 * to ride on. Every lookup is scoped; another tenant's id is a 404. Described in
 * web/static/openapi.json, served at /api/v1/openapi.json.
 */
import fs from 'node:fs'
import path from 'node:path'
import { type Context, Hono, type MiddlewareHandler } from 'hono'
import type { Db } from '../../appliance/db/database'
import { parseMessage } from '../../appliance/engine/message'
import { recordReports } from '../../appliance/engine/reports'
import { QuarantineActions } from '../../appliance/quarantine/actions'
import { type Accounts, canSeeEntry, canSeeMessage, type Principal, type Scope } from '../../appliance/services/accounts'
import { type Archive, ArchiveQueryError } from '../../appliance/services/archive'
import { Quarantine, QuarantineError } from '../../appliance/services/quarantine'
import type { RawStore } from '../../appliance/services/raw-store'
import { SenderLists } from '../../appliance/services/sender-lists'
import { TenantError } from '../../appliance/services/tenants'
import { checkForUpdate, type UpdateStatus } from '../../appliance/services/updates'
import { PushNotifier } from '../../appliance/notifier/push'
import { visibleEntriesFor } from './lists'

type ApiEnv = { Variables: { principal: Principal; scope: Scope } }

const OPENAPI = path.resolve(__dirname, '../../../web/static/openapi.json')
const MAX_REPORT_BYTES = 10 * 1024 * 1024

function problem(c: Context, status: 400 | 401 | 403 | 404 | 413, detail: string) {
  return c.json({ error: detail }, status)
}

function time(v: string | undefined): number | null {
  if (!v) return null
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  return Number.isFinite(n) ? n : null
}

/** How long one look at the update feed answers every client's version check. */
const VERSION_CHECK_TTL_MS = 10 * 60_000

export function apiRoutes(deps: { db: Db; accounts: Accounts; raws: RawStore; archive: Archive; version?: string; updateFeed?: string | null; push?: PushNotifier }): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>()
  const quarantine = new Quarantine(deps.db)
  const actions = new QuarantineActions(deps)
  const lists = new SenderLists(deps.db)
  const spec = fs.readFileSync(OPENAPI)

  app.get('/api/v1/openapi.json', (c) => {
    c.header('Content-Type', 'application/json')
    return c.body(new Uint8Array(spec))
  })

  const auth: MiddlewareHandler<ApiEnv> = async (c, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('Authorization') ?? '')
    const principal = deps.accounts.principalForToken(m?.[1])
    if (!principal) {
      c.header('WWW-Authenticate', 'Bearer realm="moat"')
      return problem(c, 401, 'a valid API token is required (Authorization: Bearer moat_…)')
    }
    c.set('principal', principal)
    c.set('scope', deps.accounts.scope(principal))
    await next()
  }
  // The API documents are public; everything else needs a token.
  app.use('/api/v1/*', async (c, next) => (c.req.path === '/api/v1/openapi.json' || c.req.path === '/api/v1/admin/openapi.json' ? next() : auth(c, next)))

  const entry = (c: Context<ApiEnv>) => {
    const id = Number(c.req.param('id'))
    if (!Number.isInteger(id)) return null
    try {
      const e = quarantine.get(id)
      return canSeeEntry(c.get('scope'), e) ? e : null
    } catch (err) {
      if (err instanceof QuarantineError) return null
      throw err
    }
  }
  const view = (e: ReturnType<Quarantine['get']>) => ({
    id: e.id, received_at: new Date(e.created_at).toISOString(), recipient: e.rcpt, sender: e.mail_from, from: e.from_header,
    subject: e.subject, verdict: e.verdict, score: e.score, direction: e.direction, released_at: e.released_at ? new Date(e.released_at).toISOString() : null,
    symbols: JSON.parse(e.symbols) as unknown[],
  })

  // Every client's About asks this about hourly: one look at the feed serves them all a while.
  let checked: { at: number; status: Promise<UpdateStatus> } | null = null
  app.get('/api/v1/version', async (c) => {
    if (!checked || Date.now() - checked.at > VERSION_CHECK_TTL_MS) checked = { at: Date.now(), status: checkForUpdate(deps.version ?? '0.0.0', deps.updateFeed ?? null) }
    const u = await checked.status
    return c.json({ version: u.current, latest: u.latest, newer: u.newer, notes: u.notes, url: u.url, error: u.error, checked_at: new Date(checked.at).toISOString() })
  })

  // The desktop notifier's Web Push (notifier/push.ts): the key to subscribe with, and the
  // subscription of this browser. An end user's own quarantine is what is counted.
  const push = deps.push ?? new PushNotifier(deps.db)
  app.get('/api/v1/push/key', (c) => c.json({ public_key: push.keys().publicKey }))
  app.post('/api/v1/push/subscriptions', async (c) => {
    const p = c.get('principal')
    if (p.kind !== 'user') return problem(c, 403, 'push notifications count an end user’s own quarantine; administrators use polling')
    const body = (await c.req.json().catch(() => null)) as { subscription?: unknown; interval_minutes?: unknown } | null
    const minutes = Number(body?.interval_minutes ?? 60)
    try {
      push.subscribe(p.id, body?.subscription as never, minutes)
    } catch (err) {
      if (err instanceof TenantError) return problem(c, 400, err.message)
      throw err
    }
    deps.accounts.audit(p, 'push-subscribe', `every ${minutes} minutes`)
    return c.json({ subscribed: true }, 201)
  })
  app.delete('/api/v1/push/subscriptions', async (c) => {
    const body = (await c.req.json().catch(() => null)) as { endpoint?: unknown } | null
    const p = c.get('principal')
    return p.kind === 'user' && push.unsubscribe(p.id, String(body?.endpoint ?? '')) ? c.body(null, 204) : problem(c, 404, 'no such subscription')
  })

  app.get('/api/v1/me', (c) => {
    const p = c.get('principal')
    return c.json({ email: p.email, role: p.role })
  })

  app.get('/api/v1/quarantine', (c) => {
    const scope = c.get('scope')
    const q = c.req.query()
    const limit = Math.min(500, Math.max(1, Number(q.limit) || 50))
    const before = /^(\d+)\.(\d+)$/.exec(q.cursor ?? '')
    const rows = quarantine.list({
      orgIds: scope.orgIds, userId: scope.userId, hideSurespam: !scope.surespam, since: time(q.since) ?? undefined,
      verdict: q.verdict === 'spam' || q.verdict === 'surespam' ? q.verdict : undefined,
      before: before ? { createdAt: Number(before[1]), id: Number(before[2]) } : undefined, limit: limit + 1,
    })
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return c.json({ items: page.map(view), next_cursor: rows.length > limit && last ? `${last.created_at}.${last.id}` : null })
  })

  app.get('/api/v1/quarantine/:id', (c) => {
    const e = entry(c)
    return e ? c.json(view(e)) : problem(c, 404, 'no such quarantine entry')
  })

  // Release, and "not spam" (release and teach the classifier): safe to repeat.
  const adminOnly = (c: Context<ApiEnv>) => problem(c, 403, 'only an administrator can release this entry: it holds a virus or a dangerous attachment')
  app.post('/api/v1/quarantine/:id/release', async (c) => {
    const e = entry(c)
    if (!e) return problem(c, 404, 'no such quarantine entry')
    const r = actions.act(c.get('principal'), e, 'release', 'API')
    if (r.outcome === 'admin-only') return adminOnly(c)
    return c.json(r.outcome === 'unchanged' ? { id: e.id, released: true, already: true } : { id: e.id, released: true })
  })
  app.post('/api/v1/quarantine/:id/report', async (c) => {
    const e = entry(c)
    if (!e) return problem(c, 404, 'no such quarantine entry')
    const r = actions.act(c.get('principal'), e, 'not-spam', 'API')
    if (r.outcome === 'admin-only') return adminOnly(c)
    return c.json({ id: e.id, released: true, learned: 'ham', report: r.report })
  })

  // Spam that slipped through, or mail wrongly in Junk: the client sends the message as it
  // has it (message/rfc822); learned with the symbols it got on arrival, if it is found.
  for (const [route, spam] of [['/api/v1/report-spam', true], ['/api/v1/report-not-spam', false]] as const) {
    app.post(route, async (c) => {
      const len = Number(c.req.header('Content-Length') ?? 0)
      if (len > MAX_REPORT_BYTES) return problem(c, 413, `a report may be at most ${MAX_REPORT_BYTES} bytes`)
      const raw = Buffer.from(await c.req.arrayBuffer())
      if (!raw.length || raw.length > MAX_REPORT_BYTES) return problem(c, raw.length ? 413 : 400, 'send the message itself as the body (Content-Type: message/rfc822)')
      const scope = c.get('scope')
      const messageId = (await parseMessage(raw)).messageId
      const atReceipt = messageId ? deps.archive.symbolsAtReceipt(messageId, scope) : null
      const [report] = recordReports(deps.db, [{ raw, spam, symbols: atReceipt ?? [] }], `${c.get('principal').email} via API`)
      deps.accounts.audit(c.get('principal'), spam ? 'report-spam' : 'report-not-spam', `${raw.length} bytes, report ${report}`)
      return c.json({ learned: spam ? 'spam' : 'ham', report })
    })
  }

  app.get('/api/v1/counts', (c) => {
    const scope = c.get('scope')
    const since = time(c.req.query('since')) ?? Date.now() - 86_400_000
    const rows = quarantine.counts({ orgIds: scope.orgIds, userId: scope.userId, since })
    return c.json({ since: new Date(since).toISOString(), ...rows })
  })

  app.get('/api/v1/archive', (c) => {
    const scope = c.get('scope')
    try {
      const limit = Math.min(200, Math.max(1, Number(c.req.query('limit')) || 50))
      const cursor = Number(c.req.query('cursor'))
      const hits = deps.archive.search(c.req.query('q') ?? '', {
        orgIds: scope.orgIds, addresses: scope.userId !== null ? scope.addresses : undefined,
        limit: limit + 1, offset: Math.max(0, Number(c.req.query('offset')) || 0), before: Number.isInteger(cursor) && cursor > 0 ? cursor : undefined,
      })
      const page = hits.slice(0, limit)
      return c.json({ items: page.map((h) => ({ ...h, received_at: new Date(h.received_at).toISOString() })), next_cursor: hits.length > limit ? String(page.at(-1)!.id) : null })
    } catch (err) {
      if (err instanceof ArchiveQueryError) return problem(c, 400, err.message)
      throw err
    }
  })

  app.get('/api/v1/archive/:id/eml', (c) => {
    const scope = c.get('scope')
    const row = deps.db.prepare(`SELECT org_id, raw_id, mail_from, rcpt_to FROM messages WHERE id = ?`).get(Number(c.req.param('id'))) as
      | { org_id: number; raw_id: number; mail_from: string; rcpt_to: string }
      | undefined
    if (!row || !canSeeMessage(scope, row)) return problem(c, 404, 'no such message')
    c.header('Content-Type', 'message/rfc822')
    return c.body(new Uint8Array(deps.raws.read(row.raw_id)))
  })

  app.get('/api/v1/lists', (c) => c.json({ items: visibleEntriesFor(lists, c.get('scope')) }))
  app.post('/api/v1/lists', async (c) => {
    const p = c.get('principal')
    const body = (await c.req.json().catch(() => null)) as { kind?: string; pattern?: string; organisation_id?: number } | null
    if (!body || (body.kind !== 'allow' && body.kind !== 'block')) return problem(c, 400, 'send {"kind": "allow"|"block", "pattern": "…"}')
    const orgId = p.role === 'user' ? p.orgId! : Number(body.organisation_id)
    const scope = c.get('scope')
    if (scope.orgIds !== null && !scope.orgIds.includes(orgId)) return problem(c, 404, 'no such organisation')
    try {
      const e = lists.add(orgId, p.role === 'user' ? p.id : null, body.kind, String(body.pattern ?? ''))
      deps.accounts.audit(p, 'list-add', `${e.kind} ${e.pattern} via API`)
      return c.json(e, 201)
    } catch (err) {
      if (err instanceof TenantError) return problem(c, 400, err.message)
      throw err
    }
  })
  app.delete('/api/v1/lists/:id', (c) => {
    const id = Number(c.req.param('id'))
    if (!visibleEntriesFor(lists, c.get('scope')).some((e) => e.id === id)) return problem(c, 404, 'no such list entry')
    lists.remove(id)
    deps.accounts.audit(c.get('principal'), 'list-remove', `entry ${id} via API`)
    return c.body(null, 204)
  })
  return app
}
