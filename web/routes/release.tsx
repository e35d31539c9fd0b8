/*
 * Release links from digests: GET shows what would be released and a button; only the POST
 * from that page releases. Link scanners (mail security gateways, previewers) follow every
 * link with GET, so a GET must never change anything. The token is the authorisation: no
 * sign-in needed, single use, expiring.
 */
import { Hono } from 'hono'
import type { Digests } from '../../appliance/services/digests'
import type { Env } from '../security'
import { Layout } from '../views/layout'

const WHY = { unknown: 'This link is not valid.', used: 'This link was used already: the message was released.', expired: 'This link has expired; open your quarantine to release the message.' }

export function releaseRoutes(digests: Digests): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/r/:token', (c) => {
    c.header('Referrer-Policy', 'no-referrer')
    const r = digests.check(c.req.param('token'))
    if (!r.ok) return c.html(<Layout title="Release" session={null}><p class="error" role="alert">{WHY[r.reason]}</p></Layout>, r.reason === 'unknown' ? 404 : 410)
    return c.html(
      <Layout title="Release" session={null}>
        <h1>Release this message?</h1>
        <p>From {r.sender || '<>'}: <strong>{r.subject || '(no subject)'}</strong></p>
        <form method="post" action={`/r/${c.req.param('token')}`}>
          <button type="submit">Release it to my mailbox</button>
        </form>
      </Layout>,
    )
  })
  app.post('/r/:token', (c) => {
    const r = digests.redeem(c.req.param('token'))
    if (!r.ok) return c.html(<Layout title="Release" session={null}><p class="error" role="alert">{WHY[r.reason]}</p></Layout>, r.reason === 'unknown' ? 404 : 410)
    return c.html(<Layout title="Released" session={null}><p role="status">Released: “{r.subject || '(no subject)'}” is on its way to your mailbox.</p></Layout>)
  })
  return app
}
