/* The web app's placeholder and health endpoint, through app.request(). */
import t from 'tap'
import { openDatabase } from '../../appliance/db/database'
import { Tenants } from '../../appliance/services/tenants'
import { createApp } from '../../web/app'

t.test('health reports counts and the status page escapes nothing it should not', async (t) => {
  const db = openDatabase(':memory:')
  new Tenants(db).addOrg('acme')
  const app = createApp({ db, version: '9.9.9', clamd: null })
  const health = await app.request('/healthz')
  t.equal(health.status, 200)
  t.match(await health.json(), { ok: true, version: '9.9.9', organisations: 1, archived: 0, antivirus: /OFF/ })
  const page = await app.request('/')
  t.equal(page.status, 200)
  t.equal(page.headers.get('x-frame-options'), 'DENY')
  t.match(page.headers.get('content-security-policy'), /default-src 'self'/)
  t.match(await page.text(), /<h1>Moat 9.9.9<\/h1>/)
  t.equal((await app.request('/nope')).status, 404)
})
