/*
 * The admin API over the real app: tokens act with their maker's role and scope, bodies are
 * checked by the schemas the OpenAPI document is made from, and the bulk user PUT is
 * idempotent.
 */
import t from 'tap'
import { Accounts, type Principal } from '../../appliance/services/accounts'
import { setup } from '../helpers/web'

t.test('the admin API: scope, validation, idempotent bulk users, the OpenAPI document', async (t) => {
  const { app, db } = await setup(t)
  const accounts = new Accounts(db)
  const principal = (kind: 'admin' | 'user', email: string): Principal => {
    const table = kind === 'admin' ? 'admins' : 'users'
    const id = db.prepare(`SELECT id FROM ${table} WHERE email = ?`).pluck().get(email) as number
    return (accounts as unknown as { principalFor(k: string, id: number): Principal }).principalFor(kind, id)
  }
  const root = accounts.createToken(principal('admin', 'root@moat.test'), 'provisioning').token
  const boss = accounts.createToken(principal('user', 'boss@example.com'), 'boss tools').token
  const alice = accounts.createToken(principal('user', 'alice@example.com'), 'outlook').token
  const call = async (token: string | null, method: string, path: string, body?: unknown) => {
    const res = await app.request(path, { method, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) })
    return { status: res.status, body: (await res.json().catch(() => null)) as any }
  }

  const doc = await call(null, 'GET', '/api/v1/admin/openapi.json')
  t.equal(doc.status, 200, 'the document is public')
  t.equal(doc.body.openapi, '3.1.0')
  const put = doc.body.paths['/api/v1/admin/organisations/{org}/users'].put
  t.equal(put.requestBody.content['application/json'].schema.properties.users.maxItems, 100_000, 'the bulk limit in the document is the one enforced')
  t.same(put.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`), ['path:org'])
  t.ok(doc.body.paths['/api/v1/admin/tracking'].get.parameters.some((p: { name: string }) => p.name === 'queue_id'))

  t.equal((await call(null, 'GET', '/api/v1/admin/organisations')).status, 401)
  t.equal((await call(alice, 'GET', '/api/v1/admin/organisations')).status, 403, "an end user's token is refused")

  t.same((await call(root, 'GET', '/api/v1/admin/organisations')).body.items.map((o: { name: string }) => o.name), ['acme', 'globex'])
  t.same((await call(boss, 'GET', '/api/v1/admin/organisations')).body.items.map((o: { name: string }) => o.name), ['acme'], 'an organisation admin sees their own')
  t.equal((await call(boss, 'GET', '/api/v1/admin/organisations/globex/users')).status, 404, "another organisation's users are not found")
  t.equal((await call(boss, 'PUT', '/api/v1/admin/organisations/globex/users', { users: [{ email: 'x@globex.test' }] })).status, 404)
  t.equal((await call(boss, 'POST', '/api/v1/admin/organisations', { name: 'mine' })).status, 403)
  let r = await call(root, 'POST', '/api/v1/admin/organisations', { name: 'initech' })
  t.equal(r.status, 201)
  t.equal((await call(root, 'POST', '/api/v1/admin/organisations', { name: 'initech' })).status, 409, 'twice: a conflict')
  r = await call(root, 'POST', '/api/v1/admin/organisations', { name: 'Bad Name!' })
  t.equal(r.status, 400)
  t.match(r.body, { error: 'the body is not valid', issues: [{ path: 'name' }] })
  t.equal((await call(root, 'POST', '/api/v1/admin/organisations', '{not json')).status, 400)

  r = await call(root, 'POST', '/api/v1/admin/organisations/initech/domains', { name: 'initech.test', deliver_to: '127.0.0.1:2600' })
  t.equal(r.status, 201)
  t.match((await call(root, 'GET', '/api/v1/admin/organisations/initech/domains')).body.items, [{ name: 'initech.test', deliver_to: '127.0.0.1:2600', tag_mode: false }])

  const users = [
    { email: 'new@example.com', display_name: 'New Person' },
    { email: 'bob@example.com', display_name: 'Bob Renamed' },
    { email: 'hank@globex.test' },
    { email: 'not an address' },
    { email: 'alice@example.com', role: 'org_admin' as const },
  ]
  r = await call(boss, 'PUT', '/api/v1/admin/organisations/acme/users', { users })
  t.equal(r.status, 200)
  t.match(r.body, { created: 1, updated: 2, unchanged: 0 })
  t.same(r.body.errors.map((e: { index: number }) => e.index), [2, 3], 'the bad rows are named by index')
  r = await call(boss, 'PUT', '/api/v1/admin/organisations/acme/users', { users })
  t.match(r.body, { created: 0, updated: 0, unchanged: 3 }, 'the same request again changes nothing')
  t.equal(db.prepare(`SELECT role FROM users WHERE email = 'alice@example.com'`).pluck().get(), 'org_admin')
  r = await call(root, 'PUT', '/api/v1/admin/organisations/acme/users', { users: 'everyone' })
  t.equal(r.status, 400)
  t.match(r.body.issues, [{ path: 'users' }])

  const page1 = await call(root, 'GET', '/api/v1/admin/organisations/acme/users?limit=2')
  t.equal(page1.body.items.length, 2)
  const page2 = await call(root, 'GET', `/api/v1/admin/organisations/acme/users?limit=2&after=${encodeURIComponent(page1.body.next)}`)
  t.notSame(page2.body.items[0].email, page1.body.items[1].email, 'the next page goes on')
  t.equal((await call(root, 'GET', '/api/v1/admin/organisations/acme/users?limit=0')).status, 400)

  t.equal((await call(boss, 'POST', '/api/v1/admin/organisations/acme/aliases', { address: 'sales@example.com', target: 'hank@globex.test' })).status, 404, 'an alias cannot point into another organisation')
  t.equal((await call(boss, 'POST', '/api/v1/admin/organisations/acme/aliases', { address: 'sales@example.com', target: 'new@example.com' })).status, 201)
  t.same((await call(boss, 'GET', '/api/v1/admin/organisations/acme/aliases')).body.items, [{ address: 'sales@example.com', target: 'new@example.com' }])
  t.equal((await call(boss, 'DELETE', '/api/v1/admin/organisations/acme/users/hank%40globex.test')).status, 404)
  t.same((await call(boss, 'DELETE', '/api/v1/admin/organisations/acme/users/new%40example.com')).body, { removed: true })
  t.same((await call(boss, 'GET', '/api/v1/admin/organisations/acme/aliases')).body.items, [], "the user's alias went with them")

  const tracked = await call(boss, 'GET', '/api/v1/admin/tracking?to=alice')
  t.equal(tracked.status, 200)
  t.ok(tracked.body.items.every((x: { org: string }) => x.org === 'acme'), 'tracking in scope')
  t.match(db.prepare(`SELECT detail FROM audit_log WHERE action = 'users-bulk' ORDER BY id DESC`).pluck().get(), /acme: 0 created, 0 updated, 2 refused \(API\)/, 'audited')
})
