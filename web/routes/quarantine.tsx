/*
 * The quarantine: search and filters, keyset paging (fast at a million rows), a safe preview
 * (the HTML part only inside a sandboxed frame whose own CSP blocks every remote load), the
 * symbols and weights behind the verdict, and release / delete / not spam, one or many.
 * Every lookup goes through the session's scope: another tenant's entry is a plain 404.
 */
import { type Context, Hono } from 'hono'
import { type Accounts, canSeeEntry } from '../../appliance/services/accounts'
import type { Archive } from '../../appliance/services/archive'
import { QUARANTINE_ACTIONS, type QuarantineAction, QuarantineActions } from '../../appliance/quarantine/actions'
import { parseMessage } from '../../appliance/engine/message'
import { adminReleaseOnly, Quarantine, type QuarantineEntry, QuarantineError, type QuarantineFilter } from '../../appliance/services/quarantine'
import type { RawStore } from '../../appliance/services/raw-store'
import type { Db } from '../../appliance/db/database'
import { SenderLists, senderAddress } from '../../appliance/services/sender-lists'
import { type Env, requireLogin } from '../security'
import { addForPrincipal } from './lists'
import { Csrf, Done, Layout, when } from '../views/layout'

const PAGE = 50

const REASONS: Record<QuarantineEntry['reason'], string> = {
  score: '',
  virus: 'virus',
  attachment: 'dangerous attachment',
  backscatter: 'unstamped bounce',
  blocked: 'blocked sender',
}

/** "surespam", or "surespam: virus" when something other than the score put it there. */
export function verdictLabel(e: Pick<QuarantineEntry, 'verdict' | 'reason'>): string {
  return REASONS[e.reason] ? `${e.verdict}: ${REASONS[e.reason]}` : e.verdict
}

function day(v: string | undefined): number | undefined {
  if (!v || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return undefined
  const t = Date.parse(`${v}T00:00:00Z`)
  return Number.isNaN(t) ? undefined : t
}

export function quarantineRoutes(deps: { db: Db; accounts: Accounts; raws: RawStore; archive: Archive }): Hono<Env> {
  const app = new Hono<Env>()
  const quarantine = new Quarantine(deps.db)
  const lists = new SenderLists(deps.db)
  app.use('/quarantine', requireLogin())
  app.use('/quarantine/*', requireLogin())

  /** The entry if this session may see it; otherwise null (answered as 404). */
  const entry = (c: Context<Env>, id: string): QuarantineEntry | null => {
    const n = Number(id)
    if (!Number.isInteger(n)) return null
    try {
      const e = quarantine.get(n)
      return canSeeEntry(c.get('scope')!, e) ? e : null
    } catch (err) {
      if (err instanceof QuarantineError) return null
      throw err
    }
  }

  app.get('/quarantine', (c) => {
    const session = c.get('session')!
    const scope = c.get('scope')!
    const q = c.req.query()
    const until = day(q.until)
    const filter: QuarantineFilter = {
      orgIds: scope.orgIds,
      userId: scope.userId,
      hideSurespam: !scope.surespam,
      sender: q.sender || undefined,
      subject: q.subject || undefined,
      rcpt: q.rcpt || undefined,
      verdict: q.verdict === 'spam' || q.verdict === 'surespam' ? q.verdict : undefined,
      since: day(q.since),
      until: until === undefined ? undefined : until + 86_400_000,
      limit: PAGE + 1,
    }
    const m = /^(\d+)\.(\d+)$/.exec(q.before ?? '')
    if (m) filter.before = { createdAt: Number(m[1]), id: Number(m[2]) }
    const rows = quarantine.list(filter)
    const more = rows.length > PAGE
    const page = rows.slice(0, PAGE)
    const last = page.at(-1)
    const keep = new URLSearchParams(Object.entries(q).filter(([k, v]) => !['before', 'done', 'n'].includes(k) && v) as [string, string][])
    if (last) keep.set('before', `${last.created_at}.${last.id}`)
    return c.html(
      <Layout title="Quarantine" session={session}>
        <h1>Quarantine</h1>
        <Done done={c.req.query('done')} n={c.req.query('n')} />
        <form method="get" action="/quarantine" class="filters" role="search">
          <input name="sender" placeholder="Sender" value={q.sender ?? ''} />
          <input name="subject" placeholder="Subject" value={q.subject ?? ''} />
          {scope.userId === null && <input name="rcpt" placeholder="Recipient" value={q.rcpt ?? ''} />}
          {scope.surespam && (
            <select name="verdict">
              <option value="">spam and surespam</option>
              <option value="spam" selected={q.verdict === 'spam'}>spam</option>
              <option value="surespam" selected={q.verdict === 'surespam'}>surespam</option>
            </select>
          )}
          <label>from <input type="date" name="since" value={q.since ?? ''} /></label>
          <label>to <input type="date" name="until" value={q.until ?? ''} /></label>
          <button type="submit">Search</button>
        </form>
        <form method="post" action="/quarantine/bulk">
          <Csrf session={session} />
          <div class="actions">
            <button type="submit" name="action" value="release">Release selected</button>
            <button type="submit" name="action" value="delete">Delete selected</button>
          </div>
          <table id="quarantine">
            <thead>
              <tr><th></th><th>Received</th><th>From</th><th>Subject</th><th class="wide">To</th><th>Verdict</th><th class="num wide">Score</th></tr>
            </thead>
            <tbody>
              {page.map((e) => (
                <tr data-id={e.id}>
                  <td><input type="checkbox" name="ids" value={String(e.id)} aria-label={`select ${e.id}`} /></td>
                  <td>{when(e.created_at)}</td>
                  <td>{e.from_header || e.mail_from || '<>'}</td>
                  <td><a href={`/quarantine/${e.id}`}>{e.subject || '(no subject)'}</a></td>
                  <td class="wide">{e.rcpt}{e.direction === 'out' ? ' (outbound)' : ''}</td>
                  <td>{verdictLabel(e)}</td>
                  <td class="num wide">{e.score.toFixed(1)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {!page.length && <p class="muted">Nothing in the quarantine matches.</p>}
        </form>
        {more && <p><a href={`/quarantine?${keep}`} rel="next">Older →</a></p>}
      </Layout>,
    )
  })

  app.get('/quarantine/:id', async (c) => {
    const e = entry(c, c.req.param('id'))
    if (!e) return c.notFound()
    const session = c.get('session')!
    const msg = await parseMessage(deps.raws.read(e.raw_id))
    const symbols = JSON.parse(e.symbols) as { name: string; weight: number; detail?: string }[]
    const sender = senderAddress(e.from_header, e.mail_from)
    return c.html(
      <Layout title={e.subject || 'Quarantined message'} session={session}>
        <h1>{e.subject || '(no subject)'}</h1>
        <table>
          <tbody>
            <tr><th>From</th><td>{e.from_header || e.mail_from}</td></tr>
            <tr><th>Envelope sender</th><td>{e.mail_from || '<>'}</td></tr>
            <tr><th>To</th><td>{e.rcpt}</td></tr>
            <tr><th>Date</th><td>{msg.date ?? ''}</td></tr>
            <tr><th>Verdict</th><td>{verdictLabel(e)}, score {e.score.toFixed(2)}{e.released_at ? `, released ${when(e.released_at)}` : ''}</td></tr>
          </tbody>
        </table>
        {e.reason === 'attachment' && <p class="muted">The recipient got this message without its dangerous attachments, or not at all; this is the original.</p>}
        {!e.released_at && session.principal.role === 'user' && adminReleaseOnly(e) ? (
          <p class="muted">Only an administrator can release this message.</p>
        ) : !e.released_at && (
          <div class="actions">
            <form method="post" action={`/quarantine/${e.id}/release`}><Csrf session={session} /><button type="submit">Release</button></form>
            <form method="post" action={`/quarantine/${e.id}/not-spam`}><Csrf session={session} /><button type="submit">Not spam (release and report)</button></form>
            <form method="post" action={`/quarantine/${e.id}/delete`}><Csrf session={session} /><button type="submit">Delete</button></form>
          </div>
        )}
        {session.principal.role !== 'user' && e.user_id !== null ? (
          // An admin looking at a user's message decides for whom: that user, or everyone in the organisation.
          <div class="actions" id="list-sender">
            {(['allow', 'block'] as const).map((kind) => (
              <>
                <form method="post" action={`/quarantine/${e.id}/${kind}-sender`}><Csrf session={session} /><input type="hidden" name="for" value="user" /><button type="submit">{kind === 'allow' ? 'Allow' : 'Block'} {sender} for {e.rcpt}</button></form>
                <form method="post" action={`/quarantine/${e.id}/${kind}-sender`}><Csrf session={session} /><input type="hidden" name="for" value="org" /><button type="submit">{kind === 'allow' ? 'Allow' : 'Block'} {sender} for all of {e.org}</button></form>
              </>
            ))}
          </div>
        ) : (
          <div class="actions" id="list-sender">
            <form method="post" action={`/quarantine/${e.id}/allow-sender`}><Csrf session={session} /><button type="submit">Allow {sender}</button></form>
            <form method="post" action={`/quarantine/${e.id}/block-sender`}><Csrf session={session} /><button type="submit">Block {sender}</button></form>
          </div>
        )}
        <h2>Why it was flagged</h2>
        <table id="symbols">
          <thead><tr><th>Symbol</th><th class="num">Weight</th><th>Detail</th></tr></thead>
          <tbody>
            {[...symbols].sort((a, b) => b.weight - a.weight).map((s) => (
              <tr><td>{s.name}</td><td class="num">{s.weight.toFixed(2)}</td><td>{s.detail ?? ''}</td></tr>
            ))}
          </tbody>
        </table>
        <h2>Text</h2>
        <pre class="body">{msg.text.slice(0, 100_000)}</pre>
        {msg.html && (
          <>
            <h2>HTML (remote content blocked)</h2>
            <iframe class="html" sandbox="" src={`/quarantine/${e.id}/html`} title="HTML part"></iframe>
          </>
        )}
      </Layout>,
    )
  })

  // The HTML part, for the sandboxed frame only: no script, no remote anything, not even styles.
  app.get('/quarantine/:id/html', async (c) => {
    const e = entry(c, c.req.param('id'))
    if (!e) return c.notFound()
    const msg = await parseMessage(deps.raws.read(e.raw_id))
    c.header('Content-Security-Policy', "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox")
    c.header('X-Frame-Options', 'SAMEORIGIN')
    return c.html(msg.html || '')
  })

  const actions = new QuarantineActions({ db: deps.db, raws: deps.raws, accounts: deps.accounts })
  /** How many of `ids` the action changed; unseen, already released or admin-only ones are skipped. */
  const act = (c: Context<Env>, ids: number[], action: QuarantineAction): number => {
    const principal = c.get('session')!.principal
    let done = 0
    for (const id of ids) {
      const e = entry(c, String(id))
      if (e && actions.act(principal, e, action, 'web').outcome === 'done') done++
    }
    return done
  }

  for (const action of QUARANTINE_ACTIONS) {
    app.post(`/quarantine/:id/${action}`, async (c) => {
      const e = entry(c, c.req.param('id'))
      if (!e) return c.notFound()
      const { outcome } = actions.act(c.get('session')!.principal, e, action, 'web')
      if (outcome === 'admin-only') return c.text('Only an administrator can release this message: it holds a virus or a dangerous attachment.', 403)
      return c.redirect(`/quarantine?done=${action}&n=${outcome === 'done' ? 1 : 0}`, 303)
    })
  }

  // "Allow sender" releases too: the user has just said this mail is wanted.
  for (const [path, kind] of [['allow-sender', 'allow'], ['block-sender', 'block']] as const) {
    app.post(`/quarantine/:id/${path}`, async (c) => {
      const e = entry(c, c.req.param('id'))
      if (!e) return c.notFound()
      const sender = senderAddress(e.from_header, e.mail_from)
      if (!sender) return c.text('This message has no sender address to list.', 400)
      const p = c.get('session')!.principal
      const body = await c.req.parseBody()
      // An admin chose "for this user": the entry goes on the recipient's own list.
      const forUser = p.role !== 'user' && body.for === 'user' && e.user_id !== null
      if (forUser) lists.add(e.org_id, e.user_id, kind, sender)
      else addForPrincipal(lists, p, e.org_id, kind, sender)
      deps.accounts.audit(p, `list-add`, `${kind} ${sender} from quarantine entry ${e.id}${forUser ? ` for ${e.rcpt}` : ''}`)
      if (kind === 'allow' && !e.released_at) actions.act(p, e, 'release', 'web')
      return c.redirect(`/quarantine?done=${path}`, 303)
    })
  }

  app.post('/quarantine/bulk', async (c) => {
    const body = await c.req.parseBody({ all: true })
    const ids = ([] as unknown[]).concat(body.ids ?? []).map(Number).filter(Number.isInteger)
    const action = body.action === 'delete' ? 'delete' : 'release'
    const n = act(c, ids.slice(0, 500), action)
    return c.redirect(`/quarantine?done=${action}&n=${n}`, 303)
  })
  return app
}
