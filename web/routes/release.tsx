/*
 * Links from digests. GET shows what the link would do and a button; only the POST from that
 * page acts. Link scanners (mail security gateways, previewers) follow every link with GET, so
 * a GET must never change anything. The token is the authorisation: no sign-in needed, single
 * use, expiring. Actions are the user's own, audited like the same click in the quarantine.
 *
 * /digest/unsubscribe/:token turns the digest off: GET asks, POST does (RFC 8058 one-click:
 * mail programs POST "List-Unsubscribe=One-Click" themselves, without showing the page).
 */
import { Hono } from 'hono'
import type { Accounts, Principal } from '../../appliance/services/accounts'
import { DIGEST_ACTIONS, type DigestAction, type Digests } from '../../appliance/services/digests'
import type { Env } from '../security'
import { Layout } from '../views/layout'

const WHY = {
  unknown: 'This link is not valid, or its message was deleted.',
  used: 'This link was used already.',
  expired: 'This link has expired; open your quarantine to deal with the message.',
}

const ASK: Record<DigestAction, { question: string; button: string; done: (subject: string, sender: string) => string }> = {
  deliver: { question: 'Deliver this message to your mailbox?', button: 'Deliver it', done: (s) => `Delivered: “${s}” is on its way to your mailbox.` },
  allow: { question: 'Always accept mail from this sender, and deliver this message?', button: 'Allow the sender and deliver', done: (s, f) => `${f} is on your allow list, and “${s}” is on its way to your mailbox.` },
  block: { question: 'Block this sender and delete this message?', button: 'Block the sender', done: (_s, f) => `${f} is on your block list; the message was deleted.` },
  delete: { question: 'Delete this message from your quarantine?', button: 'Delete it', done: (s) => `Deleted: “${s}”.` },
}

/** Who acts through a digest link: the user it was made for (audited as that user). */
const linkHolder = (u: { userId: number; email: string; orgId: number }): Principal => ({ kind: 'user', id: u.userId, email: u.email, role: 'user', mspId: null, orgId: u.orgId, totp: false })

const actionOf = (v: unknown): DigestAction | null => (DIGEST_ACTIONS.includes(v as DigestAction) ? (v as DigestAction) : null)

export function releaseRoutes(digests: Digests, accounts: Accounts): Hono<Env> {
  const app = new Hono<Env>()
  const fail = (reason: keyof typeof WHY) => <Layout title="Quarantine" session={null}><p class="error" role="alert">{WHY[reason]}</p></Layout>
  app.get('/r/:token', (c) => {
    c.header('Referrer-Policy', 'no-referrer')
    // Links of digests sent before actions existed carry none: they meant Release.
    const action = actionOf(c.req.query('a') ?? 'deliver')
    if (!action) return c.html(fail('unknown'), 404)
    const r = digests.check(c.req.param('token'))
    if (!r.ok) return c.html(fail(r.reason), r.reason === 'unknown' ? 404 : 410)
    return c.html(
      <Layout title="Quarantine" session={null}>
        <h1>{ASK[action].question}</h1>
        <p>From <strong id="sender">{r.sender || '<>'}</strong>: <strong id="subject">{r.subject || '(no subject)'}</strong></p>
        <form method="post" action={`/r/${c.req.param('token')}`}>
          <input type="hidden" name="a" value={action} />
          <button type="submit">{ASK[action].button}</button>
        </form>
      </Layout>,
    )
  })
  app.post('/r/:token', async (c) => {
    c.header('Referrer-Policy', 'no-referrer')
    const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>)
    const action = actionOf(body.a ?? c.req.query('a') ?? 'deliver')
    if (!action) return c.html(fail('unknown'), 404)
    const r = digests.redeem(c.req.param('token'), action)
    if (!r.ok) return c.html(fail(r.reason), r.reason === 'unknown' ? 404 : 410)
    accounts.audit(linkHolder(r), `digest-${action}`, `entry ${r.quarantineId}${action === 'allow' || action === 'block' ? `, sender ${r.sender}` : ''}`)
    return c.html(
      <Layout title="Quarantine" session={null}>
        <p role="status" id="done">{ASK[action].done(r.subject || '(no subject)', r.sender || '<>')}</p>
        <p><a href="/quarantine">Open my quarantine</a></p>
      </Layout>,
    )
  })

  app.get('/digest/unsubscribe/:token', (c) => {
    c.header('Referrer-Policy', 'no-referrer')
    const who = digests.unsubscribeCheck(c.req.param('token'))
    if (!who) return c.html(fail('unknown'), 404)
    return c.html(
      <Layout title="Quarantine digest" session={null}>
        <h1>Stop the quarantine digest for {who.email}?</h1>
        {!who.enabled && <p class="muted">It is off already.</p>}
        <form method="post" action={`/digest/unsubscribe/${c.req.param('token')}`}>
          <button type="submit">Turn the digest off</button>
        </form>
        <p class="muted">You can turn it on again on your account page.</p>
      </Layout>,
    )
  })
  app.post('/digest/unsubscribe/:token', (c) => {
    const who = digests.unsubscribe(c.req.param('token'))
    if (!who) return c.html(fail('unknown'), 404)
    if (who.enabled) accounts.audit(linkHolder(who), 'digest-off', 'unsubscribe link')
    return c.html(<Layout title="Quarantine digest" session={null}><p role="status" id="done">The quarantine digest for {who.email} is off.</p></Layout>)
  })
  return app
}
