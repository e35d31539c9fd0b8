/*
 * The campaign fingerprints moat-fuzzy knows (learning/), for the appliance admin: how many
 * by kind, word and origin, who taught the most, and withdrawing a reporter's words or one
 * fingerprint, as `moat fingerprints [revoke]` does. The mail path drops a withdrawn word
 * within seconds. Appliance-wide: fingerprints are shared by every organisation.
 */
import { Hono } from 'hono'
import type { Context } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { FingerprintKind } from '../../appliance/learning/fingerprint-index'
import { revokeFingerprints } from '../../appliance/learning/fingerprint-store'
import type { Accounts } from '../../appliance/services/accounts'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout } from '../views/layout'

export function fingerprintRoutes(deps: { db: Db; accounts: Accounts }): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/fingerprints', requireLogin(['appliance_admin']))
  app.use('/fingerprints/*', requireLogin(['appliance_admin']))
  const counts = deps.db.prepare(`SELECT kind, label, origin, count(*) AS n FROM fuzzy_hashes WHERE revoked_at IS NULL GROUP BY kind, label, origin ORDER BY kind, label, origin`)
  const reporters = deps.db.prepare(`SELECT reporter, label, count(*) AS n FROM fuzzy_hashes WHERE revoked_at IS NULL GROUP BY reporter, label ORDER BY n DESC LIMIT 20`)

  const page = (c: Context<Env>, status: 200 | 400 = 200, error?: string) => {
    const session = c.get('session')!
    const rows = counts.all() as { kind: string; label: string; origin: string; n: number }[]
    return c.html(
      <Layout title="Campaign fingerprints" session={session}>
        <h1>Campaign fingerprints</h1>
        <Done {...doneOf(c)} />
        {error && <p class="error" role="alert">{error}</p>}
        <p class="muted">Learned from reports, sure spam, the users' outbound mail and the MSP's other appliances; they expire after 30 days.</p>
        <table id="counts">
          <thead><tr><th>Kind</th><th>Word</th><th>From</th><th class="num">Fingerprints</th></tr></thead>
          <tbody>{rows.map((r) => <tr><td>{r.kind}</td><td>{r.label}</td><td>{r.origin === 'fleet' ? 'the fleet' : 'this appliance'}</td><td class="num">{r.n}</td></tr>)}</tbody>
        </table>
        {!rows.length && <p class="muted">None yet.</p>}
        <h2>Who taught the most</h2>
        <table id="reporters">
          <tbody>
            {(reporters.all() as { reporter: string; label: string; n: number }[]).map((r) => (
              <tr>
                <td>{r.reporter}</td><td>{r.n} {r.label}</td>
                <td><form method="post" action="/fingerprints/revoke" class="inline"><Csrf session={session} /><input type="hidden" name="reporter" value={r.reporter} /><button type="submit">Withdraw all of theirs</button></form></td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Withdraw one fingerprint</h2>
        <form method="post" action="/fingerprints/revoke" class="filters" id="revoke-one">
          <Csrf session={session} />
          <select name="kind"><option value="text">text</option><option value="url">url</option><option value="attachment">attachment</option></select>
          <input name="key" required placeholder="its key (from a message's symbols or moat fingerprints --json)" size={50} />
          <button type="submit">Withdraw</button>
        </form>
      </Layout>,
      status,
    )
  }

  app.get('/fingerprints', (c) => page(c))
  app.post('/fingerprints/revoke', async (c) => {
    const body = await c.req.parseBody()
    const reporter = String(body.reporter ?? '').trim() || undefined
    const kind = String(body.kind ?? '') as FingerprintKind
    const key = String(body.key ?? '').trim() || undefined
    if (!reporter && !(key && ['text', 'url', 'attachment'].includes(kind))) return page(c, 400, 'Name a reporter, or a kind and key.')
    const n = revokeFingerprints(deps.db, reporter ? { reporter } : { kind, key })
    deps.accounts.audit(c.get('session')!.principal, 'fingerprints-revoke', `${reporter ?? `${kind} ${key}`}: ${n}`)
    return c.redirect(`/fingerprints?done=fingerprints-revoked&n=${n}`, 303)
  })
  return app
}
