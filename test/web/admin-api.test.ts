/*
 * The admin API over the real app: tokens act with their maker's role and scope, bodies are
 * checked by the schemas the OpenAPI document is made from, and the bulk user PUT is
 * idempotent.
 */
import t from 'tap'
import { Accounts, type Principal } from '../../appliance/services/accounts'
import { Tenants } from '../../appliance/services/tenants'
import { setup } from '../helpers/web'

async function withTokens(t: Parameters<typeof setup>[0]) {
  const { app, db, ids } = await setup(t)
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
  return { app, db, ids, accounts, principal, root, boss, alice, call }
}

t.test('the admin API: scope, validation, idempotent bulk users, the OpenAPI document', async (t) => {
  const { db, root, boss, alice, call } = await withTokens(t)

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

t.test('the admin API: lists, relay networks, held senders, DKIM, routes, policy, rules, quarantine, statistics', async (t) => {
  const { db, ids, accounts, principal, root, boss, call } = await withTokens(t)
  const tenants = new Tenants(db)
  const northwind = tenants.addMsp('northwind')
  tenants.addOrg('initech', northwind.id)
  await accounts.createAdmin('ops@northwind.test', 'a long enough password', 'msp_admin', northwind.id)
  const ops = accounts.createToken(principal('admin', 'ops@northwind.test'), 'psa').token

  const doc = (await call(null, 'GET', '/api/v1/admin/openapi.json')).body
  const tags = new Set(Object.values(doc.paths).flatMap((p: any) => Object.values(p).flatMap((op: any) => op.tags)))
  for (const tag of ['organisations', 'domains', 'users', 'aliases', 'lists', 'relay networks', 'held senders', 'DKIM', 'routes', 'policies', 'rules', 'quarantine', 'statistics', 'tracking']) t.ok(tags.has(tag), `the document describes ${tag}`)
  t.same(doc.paths['/api/v1/admin/organisations/{org}/policy'].patch.requestBody.content['application/json'].schema.properties.virus_action.enum, ['reject', 'quarantine'], 'the enum the handler checks is the one documented')

  // Lists: idempotent add, bulk with bad rows named, a user's own list, scope.
  let r = await call(boss, 'POST', '/api/v1/admin/organisations/acme/lists', { kind: 'block', pattern: '@spammy.test' })
  t.equal(r.status, 201)
  const again = await call(boss, 'POST', '/api/v1/admin/organisations/acme/lists', { kind: 'block', pattern: '@SPAMMY.test' })
  t.equal(again.body.id, r.body.id, 'the same entry twice is one entry')
  r = await call(boss, 'PUT', '/api/v1/admin/organisations/acme/lists', { entries: [
    { kind: 'allow', pattern: 'partner.test' }, { kind: 'block', pattern: '@spammy.test' }, { kind: 'allow', pattern: 'not a pattern' },
    { kind: 'allow', pattern: 'friend@outside.test', user: 'alice@example.com' }, { kind: 'allow', pattern: 'x@y.test', user: 'hank@globex.test' },
  ] })
  t.match(r.body, { created: 2, unchanged: 1 })
  t.same(r.body.errors.map((e: { index: number }) => e.index), [2, 4], 'a bad pattern and another organisation\'s user are refused by index')
  const entries = (await call(boss, 'GET', '/api/v1/admin/organisations/acme/lists')).body.items
  t.same(entries.map((e: { pattern: string; user: string | null }) => `${e.pattern}:${e.user}`).sort(), ['@partner.test:null', '@spammy.test:null', 'friend@outside.test:alice@example.com'])
  t.equal((await call(boss, 'GET', '/api/v1/admin/organisations/globex/lists')).status, 404)
  t.equal((await call(ops, 'DELETE', `/api/v1/admin/organisations/acme/lists/${entries[0].id}`)).status, 404, "another MSP's admin cannot touch acme's list")
  t.same((await call(boss, 'DELETE', `/api/v1/admin/organisations/acme/lists/${entries[0].id}`)).body, { removed: true })

  // Relay networks: read by the organisation admin, changed only by MSP and appliance admins.
  t.equal((await call(boss, 'POST', '/api/v1/admin/organisations/acme/relay-networks', { cidr: '192.0.2.10' })).status, 403, 'an organisation admin cannot open a relay')
  r = await call(root, 'POST', '/api/v1/admin/organisations/acme/relay-networks', { cidr: '192.0.2.10', description: 'exchange' })
  t.match(r, { status: 201, body: { cidr: '192.0.2.10/32' } })
  t.equal((await call(root, 'POST', '/api/v1/admin/organisations/acme/relay-networks', { cidr: '192.0.2.10/32' })).status, 409)
  t.equal((await call(root, 'POST', '/api/v1/admin/organisations/acme/relay-networks', { cidr: '192.0.2.300' })).status, 400)
  t.same((await call(boss, 'GET', '/api/v1/admin/organisations/acme/relay-networks')).body.items.map((n: { cidr: string }) => n.cidr), ['192.0.2.10/32'])
  t.equal((await call(ops, 'POST', '/api/v1/admin/organisations/acme/relay-networks', { cidr: '198.51.100.0/24' })).status, 404, "an MSP admin: not another MSP's customer")
  t.equal((await call(ops, 'POST', '/api/v1/admin/organisations/initech/relay-networks', { cidr: '198.51.100.0/24' })).status, 201, 'but its own')
  t.same((await call(root, 'DELETE', `/api/v1/admin/organisations/acme/relay-networks/${r.body.id}`)).body, { removed: true })

  // Held senders: hold twice is one hold; release.
  t.same((await call(boss, 'PUT', '/api/v1/admin/organisations/acme/held-senders/bob%40example.com', { reason: 'phished' })).body, { held: true, already: false })
  t.same((await call(boss, 'PUT', '/api/v1/admin/organisations/acme/held-senders/bob%40example.com', {})).body, { held: true, already: true })
  t.match((await call(boss, 'GET', '/api/v1/admin/organisations/acme/held-senders')).body.items, [{ address: 'bob@example.com', reason: 'phished' }])
  t.equal((await call(boss, 'DELETE', '/api/v1/admin/organisations/globex/held-senders/bob%40example.com')).status, 404)
  t.same((await call(boss, 'DELETE', '/api/v1/admin/organisations/acme/held-senders/bob%40example.com')).body, { released: 0 })

  // DKIM: the record to publish, then signing.
  t.match((await call(boss, 'GET', '/api/v1/admin/organisations/acme/domains/example.com/dkim')).body, { domain: 'example.com', selector: null, signing: false, record: null })
  r = await call(boss, 'POST', '/api/v1/admin/organisations/acme/domains/example.com/dkim', { action: 'make' })
  t.match(r.body, { signing: false, record: { type: 'TXT', value: /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/ } })
  t.equal(r.body.record.name, `${r.body.selector}._domainkey.example.com`)
  t.match((await call(boss, 'POST', '/api/v1/admin/organisations/acme/domains/example.com/dkim', { action: 'enable' })).body, { signing: true, selector: r.body.selector })
  t.equal((await call(boss, 'GET', '/api/v1/admin/organisations/acme/domains/globex.test/dkim')).status, 404, "not acme's domain")
  t.equal((await call(boss, 'POST', '/api/v1/admin/organisations/acme/domains/example.com/dkim', { action: 'explode' })).status, 400)

  // Routes: the appliance admin's alone.
  t.equal((await call(boss, 'GET', '/api/v1/admin/routes')).status, 403)
  t.equal((await call(ops, 'PUT', '/api/v1/admin/routes/*', { host: 'smarthost.test:587' })).status, 403)
  t.same((await call(root, 'PUT', '/api/v1/admin/routes/*', { host: 'smarthost.test:587' })).body, { domain: '*', host: 'smarthost.test', port: 587 })
  t.same((await call(root, 'PUT', '/api/v1/admin/routes/*', { host: 'smarthost.test:587' })).body, { domain: '*', host: 'smarthost.test', port: 587 }, 'the same PUT again')
  t.equal((await call(root, 'PUT', '/api/v1/admin/routes/not..a.domain', { host: 'x' })).status, 400)
  t.same((await call(root, 'GET', '/api/v1/admin/routes')).body.items, [{ domain: '*', host: 'smarthost.test', port: 587 }])
  t.same((await call(root, 'DELETE', '/api/v1/admin/routes/*')).body, { removed: true })
  t.equal((await call(root, 'DELETE', '/api/v1/admin/routes/*')).status, 404)

  // Policy: PATCH changes what is sent, with the UI's own checks.
  const before = (await call(boss, 'GET', '/api/v1/admin/organisations/acme/policy')).body
  r = await call(boss, 'PATCH', '/api/v1/admin/organisations/acme/policy', { spam_threshold: 4.5, virus_action: 'quarantine', share_learning: false })
  t.match(r.body, { ...before, spam_threshold: 4.5, virus_action: 'quarantine', share_learning: false })
  t.equal(db.prepare(`SELECT spam_threshold FROM organisations WHERE name = 'acme'`).pluck().get(), 4.5)
  t.match((await call(boss, 'PATCH', '/api/v1/admin/organisations/acme/policy', { surespam_threshold: 1 })), { status: 400, body: { error: /surespam threshold must not be below/ } })
  t.match((await call(boss, 'PATCH', '/api/v1/admin/organisations/acme/policy', { virus_action: 'ignore' })), { status: 400, body: { issues: [{ path: 'virus_action' }] } })
  t.equal((await call(boss, 'PATCH', '/api/v1/admin/organisations/acme/policy', { spam_treshold: 3 })).status, 400, 'a misspelt field is an error, not ignored')
  t.equal((await call(boss, 'PATCH', '/api/v1/admin/organisations/globex/policy', { spam_threshold: 1 })).status, 404)

  // Rules: appliance-wide ones are the appliance admin's; others in scope.
  const what = { header: 'subject', contains: 'invoice overdue' }
  t.equal((await call(boss, 'POST', '/api/v1/admin/rules', { name: 'EVERYONE', what, action: 'spam' })).status, 403)
  r = await call(root, 'POST', '/api/v1/admin/rules', { name: 'EVERYONE', what, action: 'spam' })
  t.match(r, { status: 201, body: { name: 'EVERYONE', org: null, enabled: true } })
  t.match((await call(boss, 'POST', '/api/v1/admin/rules', { name: 'ACME_ONLY', org: 'acme', what, action: 'score', score: 3 })), { status: 201, body: { org: 'acme' } })
  t.equal((await call(boss, 'POST', '/api/v1/admin/rules', { name: 'ACME_ONLY', org: 'acme', what, action: 'score' })).status, 409)
  t.equal((await call(boss, 'POST', '/api/v1/admin/rules', { name: 'BAD', org: 'acme', what: { nonsense: 1 }, action: 'spam' })).status, 400)
  t.equal((await call(boss, 'POST', '/api/v1/admin/rules', { name: 'THEIRS', org: 'globex', what, action: 'spam' })).status, 404)
  t.equal((await call(boss, 'PATCH', '/api/v1/admin/rules/EVERYONE', { enabled: false })).status, 403, "an organisation admin cannot switch off the appliance's rule")
  t.match((await call(boss, 'PATCH', '/api/v1/admin/rules/ACME_ONLY', { enabled: false })).body, { enabled: false })
  t.equal((await call(ops, 'DELETE', '/api/v1/admin/rules/ACME_ONLY')).status, 404, "another MSP: acme's rule is not found")
  const names = (await call(boss, 'GET', '/api/v1/admin/rules')).body.items.map((x: { name: string }) => x.name)
  t.ok(names.includes('ACME_ONLY') && names.includes('EVERYONE'), "acme's rules and the appliance's")
  t.notOk((await call(ops, 'GET', '/api/v1/admin/rules')).body.items.some((x: { name: string }) => x.name === 'ACME_ONLY'), "not in another MSP's list")
  t.same((await call(boss, 'DELETE', '/api/v1/admin/rules/ACME_ONLY')).body, { removed: true })

  // Quarantine: search in scope, act, repeat safely; another tenant's ids are "not found".
  const q = (await call(boss, 'GET', '/api/v1/admin/quarantine')).body
  t.same(q.items.map((e: { rcpt: string }) => e.rcpt).sort(), ['alice@example.com', 'bob@example.com'])
  const page1 = await call(boss, 'GET', '/api/v1/admin/quarantine?limit=1')
  t.equal((await call(boss, 'GET', `/api/v1/admin/quarantine?limit=1&cursor=${page1.body.next_cursor}`)).body.items[0].id !== page1.body.items[0].id, true, 'the cursor goes on')
  t.equal((await call(boss, 'GET', '/api/v1/admin/quarantine?org=globex')).status, 404)
  const acts = { action: 'not-spam', ids: [ids.alicemail.quarantine, ids.hankmail.quarantine, 999999] }
  t.same((await call(boss, 'POST', '/api/v1/admin/quarantine/actions', acts)).body, { done: [ids.alicemail.quarantine], unchanged: [], not_found: [ids.hankmail.quarantine, 999999] })
  t.same((await call(boss, 'POST', '/api/v1/admin/quarantine/actions', acts)).body, { done: [], unchanged: [ids.alicemail.quarantine], not_found: [ids.hankmail.quarantine, 999999] }, 'again: nothing more happens')
  t.equal(db.prepare(`SELECT count(*) FROM classifier_reports WHERE label = 'ham'`).pluck().get(), 1, 'learned once')
  t.equal(db.prepare(`SELECT count(*) FROM deliveries WHERE reason = 'released'`).pluck().get(), 1, 'released once')
  t.equal(db.prepare(`SELECT released_at FROM quarantine WHERE id = ?`).pluck().get(ids.hankmail.quarantine), null, "hank's entry untouched")
  t.same((await call(root, 'POST', '/api/v1/admin/quarantine/actions', { action: 'delete', ids: [ids.hankmail.quarantine] })).body.done, [ids.hankmail.quarantine])
  t.equal((await call(root, 'POST', '/api/v1/admin/quarantine/actions', { action: 'release', ids: [] })).status, 400)

  // Statistics: the same numbers as the Statistics page, in scope.
  const st = (await call(boss, 'GET', '/api/v1/admin/statistics?days=7')).body
  t.equal(st.days.length, 7)
  t.equal(st.in.spam.at(-1), 2, "today: acme's two spam messages")
  t.same(st.top_recipients.map((x: { who: string }) => x.who).sort(), ['alice@example.com', 'bob@example.com'])
  t.equal((await call(root, 'GET', '/api/v1/admin/statistics')).body.in.spam.at(-1), 3, 'the appliance admin: all three')
  t.equal((await call(ops, 'GET', '/api/v1/admin/statistics?org=acme')).status, 404)
  const acmeAlerts = db.prepare(`SELECT count(*) FROM alerts WHERE org_id = (SELECT id FROM organisations WHERE name = 'acme') AND acknowledged_at IS NULL`).pluck().get()
  t.ok(acmeAlerts, 'holding bob raised an alert')
  t.match((await call(boss, 'GET', '/api/v1/admin/statistics/today')).body, { inbound: 2, spam: 2, quarantine_waiting: 1, open_alerts: acmeAlerts })
  t.equal((await call(boss, 'GET', '/api/v1/admin/statistics?days=91')).status, 400)
})

t.test('the admin API: removing a domain and an organisation', async (t) => {
  const { db, root, boss, call } = await withTokens(t)
  t.equal((await call(root, 'POST', '/api/v1/admin/organisations', { name: 'initech' })).status, 201)
  t.equal((await call(root, 'POST', '/api/v1/admin/organisations/initech/domains', { name: 'initech.test', deliver_to: '127.0.0.1:2600' })).status, 201)
  t.equal((await call(root, 'POST', '/api/v1/admin/organisations/initech/domains', { name: 'old.initech.test', deliver_to: '127.0.0.1:2600' })).status, 201)
  t.equal((await call(root, 'PUT', '/api/v1/admin/organisations/initech/users', { users: [{ email: 'peter@old.initech.test' }, { email: 'milton@initech.test' }] })).status, 200)

  t.equal((await call(boss, 'DELETE', '/api/v1/admin/organisations/initech/domains/old.initech.test')).status, 404, "another organisation's domain is not found")
  t.equal((await call(root, 'DELETE', '/api/v1/admin/organisations/acme/domains/old.initech.test')).status, 404, 'nor one named under the wrong organisation')
  t.same((await call(root, 'DELETE', '/api/v1/admin/organisations/initech/domains/old.initech.test')).body, { removed: true })
  t.equal((await call(root, 'DELETE', '/api/v1/admin/organisations/initech/domains/old.initech.test')).status, 404, 'gone: a second call finds nothing')
  t.same((await call(root, 'GET', '/api/v1/admin/organisations/initech/domains')).body.items.map((d: { name: string }) => d.name), ['initech.test'])
  t.same((await call(root, 'GET', '/api/v1/admin/organisations/initech/users')).body.items.map((u: { email: string }) => u.email), ['milton@initech.test'], "the domain's user went with it")

  t.equal((await call(boss, 'DELETE', '/api/v1/admin/organisations/acme')).status, 403, 'an organisation admin cannot remove their organisation')
  t.equal((await call(boss, 'DELETE', '/api/v1/admin/organisations/initech')).status, 403, 'the same answer for an organisation they cannot see: nothing told of it')
  t.same((await call(root, 'DELETE', '/api/v1/admin/organisations/initech')).body, { removed: true, messages: 0 })
  t.notOk(db.prepare(`SELECT 1 FROM organisations WHERE name = 'initech'`).get(), 'the organisation is gone')
  t.notOk(db.prepare(`SELECT 1 FROM users WHERE email = 'milton@initech.test'`).get(), 'with its users')
  t.equal((await call(root, 'DELETE', '/api/v1/admin/organisations/initech')).status, 404)
  t.ok(db.prepare(`SELECT 1 FROM organisations WHERE name = 'acme'`).get(), 'the others stay')
})
