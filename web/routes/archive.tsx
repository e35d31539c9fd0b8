/*
 * LiveArchive search for everyone, within their scope: an end user finds the mail they sent
 * or received, an admin their organisations'. The query language is the CLI's
 * (from:, to:, subject:, date:, after:, before:, "phrases"). Delivered mail can be reported
 * as spam from here: the report is learned as the clients' reports are.
 */
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import { parseMessage } from '../../appliance/engine/message'
import { recordReports } from '../../appliance/engine/reports'
import { type Accounts, canSeeMessage } from '../../appliance/services/accounts'
import { type Archive, ArchiveQueryError } from '../../appliance/services/archive'
import type { RawStore } from '../../appliance/services/raw-store'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, Layout, when } from '../views/layout'

interface Row {
  id: number
  org_id: number
  raw_id: number
  mail_from: string
  rcpt_to: string
  from_header: string | null
  subject: string | null
  received_at: number
  direction: string
  verdict: string
  symbols: string
}

/** Messages a page: newest first, the next page after the last one's id (Archive.search). */
const PAGE = 100

export function archiveRoutes(deps: { db: Db; raws: RawStore; archive: Archive; accounts: Accounts }): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/archive', requireLogin())
  app.use('/archive/*', requireLogin())
  const byId = deps.db.prepare(`SELECT id, org_id, raw_id, mail_from, rcpt_to, from_header, subject, received_at, direction, verdict, symbols FROM messages WHERE id = ?`)

  /** The message if this session may see it: its organisation, and for an end user their own mail. */
  const message = (c: Context<Env>, id: string): Row | null => {
    const row = byId.get(Number(id)) as Row | undefined
    return row && canSeeMessage(c.get('scope')!, row) ? row : null
  }

  app.get('/archive', (c) => {
    const session = c.get('session')!
    const scope = c.get('scope')!
    const query = c.req.query('q') ?? ''
    let hits: ReturnType<Archive['search']> = []
    let error: string | null = null
    const before = Number(c.req.query('before'))
    try {
      hits = deps.archive.search(query, {
        orgIds: scope.orgIds, addresses: scope.userId !== null ? scope.addresses : undefined, limit: PAGE + 1,
        before: Number.isInteger(before) && before > 0 ? before : undefined,
      })
    } catch (err) {
      if (!(err instanceof ArchiveQueryError)) throw err
      error = err.message
    }
    const more = hits.length > PAGE
    hits = hits.slice(0, PAGE)
    return c.html(
      <Layout title="Archive" session={session}>
        <h1>LiveArchive</h1>
        <form method="get" action="/archive" class="filters" role="search">
          <input name="q" size={50} placeholder='invoice from:bob subject:"order" after:2026-01-01' value={query} />
          <button type="submit">Search</button>
        </form>
        {error && <p class="error" role="alert">{error}</p>}
        <table id="archive">
          <thead><tr><th>Received</th><th>From</th><th>To</th><th>Subject</th><th class="wide">Direction</th></tr></thead>
          <tbody>
            {hits.map((h) => (
              <tr data-id={h.id}>
                <td>{when(h.received_at)}</td>
                <td>{h.from_header || h.mail_from}</td>
                <td>{h.rcpt_to}</td>
                <td><a href={`/archive/${h.id}`}>{h.subject || '(no subject)'}</a></td>
                <td class="wide">{h.direction === 'out' ? 'sent' : 'received'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {!hits.length && !error && <p class="muted">No messages match.</p>}
        {more && <p><a id="older" href={`/archive?${new URLSearchParams({ q: query, before: String(hits.at(-1)!.id) })}`}>Older messages</a></p>}
      </Layout>,
    )
  })

  app.get('/archive/:id', async (c) => {
    const row = message(c, c.req.param('id'))
    if (!row) return c.notFound()
    const msg = await parseMessage(deps.raws.read(row.raw_id))
    return c.html(
      <Layout title={row.subject || 'Message'} session={c.get('session')}>
        <h1>{row.subject || '(no subject)'}</h1>
        <table>
          <tbody>
            <tr><th>From</th><td>{row.from_header || row.mail_from}</td></tr>
            <tr><th>To</th><td>{row.rcpt_to}</td></tr>
            <tr><th>Received</th><td>{when(row.received_at)} ({row.direction === 'out' ? 'sent' : 'received'}, {row.verdict})</td></tr>
          </tbody>
        </table>
        <Done done={c.req.query('done')} />
        <p><a href={`/archive/${row.id}/eml`} download>Download the original (.eml)</a></p>
        {row.direction === 'in' && (
          <form method="post" action={`/archive/${row.id}/report-spam`}>
            <Csrf session={c.get('session')!} />
            <button type="submit">Report spam</button>
          </form>
        )}
        <pre class="body">{msg.text.slice(0, 100_000)}</pre>
      </Layout>,
    )
  })

  // Spam that was delivered: learned with what the filters saw when it arrived.
  app.post('/archive/:id/report-spam', (c) => {
    const row = message(c, c.req.param('id'))
    if (!row || row.direction !== 'in') return c.notFound()
    const principal = c.get('session')!.principal
    const [report] = recordReports(deps.db, [{ raw: deps.raws.read(row.raw_id), spam: true, symbols: JSON.parse(row.symbols || '[]') }], `${principal.email}: archive ${row.id}`)
    deps.accounts.audit(principal, 'report-spam', `archived message ${row.id}, report ${report}`)
    return c.redirect(`/archive/${row.id}?done=report-spam`, 303)
  })

  app.get('/archive/:id/eml', (c) => {
    const row = message(c, c.req.param('id'))
    if (!row) return c.notFound()
    c.header('Content-Type', 'message/rfc822')
    c.header('Content-Disposition', `attachment; filename="message-${row.id}.eml"`)
    return c.body(new Uint8Array(deps.raws.read(row.raw_id)))
  })
  return app
}
