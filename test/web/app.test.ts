/*
 * The web app through app.request(): sign-in, sessions, CSRF, headers, and the tenant
 * isolation cases — reading and changing another tenant's quarantine entries and archived
 * messages by id must answer 404.
 */
import fs from 'node:fs'
import t from 'tap'
import { openDatabase } from '../../appliance/db/database'
import { GroupCommitter } from '../../appliance/db/group-commit'
import { learnPendingReports, pendingReports } from '../../appliance/engine/reports'
import { Accounts, IDLE_TIMEOUT_MS } from '../../appliance/services/accounts'
import { requestFile } from '../../appliance/services/host-settings'
import { MailStore } from '../../appliance/services/mail-store'
import { RawStore } from '../../appliance/services/raw-store'
import { RelayControl } from '../../appliance/services/relay'
import { Spool } from '../../appliance/services/spool'
import { Tenants } from '../../appliance/services/tenants'
import { codeAt, newSecret, stepOf } from '../../appliance/services/totp'
import { createApp } from '../../web/app'
import { PASSWORD, ROOT_TOTP, post, postLogin, setup, signIn } from '../helpers/web'

t.test('sign-in: a plain form, a hardened session cookie, strict headers', async (t) => {
  const { app } = await setup(t)
  t.equal((await app.request('/quarantine')).status, 303, 'signed out: to the login page')
  const page = await app.request('/login')
  t.match(page.headers.get('content-security-policy'), /script-src 'self'; style-src 'self'/)
  t.notMatch(await page.text(), /<script>|style=/, 'no inline script or style for the CSP to allow')
  const bad = await signIn(app, 'alice@example.com', 'wrong password!!')
  t.equal(bad.status, 401)
  const res = await app.request('/login')
  const cookie = res.headers.get('set-cookie')!
  t.match(cookie, /HttpOnly/)
  const ok = await signIn(app, 'Alice@Example.com')
  t.equal(ok.status, 303)
  t.ok(ok.csrf.length > 20, 'the page carries the CSRF token for htmx')
  const home = await app.request('/quarantine', { headers: { Cookie: ok.cookie } })
  t.equal(home.status, 200)
  t.equal(home.headers.get('cache-control'), 'no-store')
  const out = await post(app, '/logout', ok)
  t.equal(out.status, 303)
  t.equal((await app.request('/quarantine', { headers: { Cookie: ok.cookie } })).status, 303, 'the session is gone after sign-out')
})

t.test('the session cookie is HttpOnly and SameSite=Lax, Secure behind TLS', async (t) => {
  const { db } = await setup(t)
  const spool = new Spool(`${t.testdir()}/spool2`)
  const app = createApp({ db, spool, version: '1', clamd: null, secureCookies: true })
  const res = await postLogin(app, 'alice@example.com', PASSWORD)
  const c = res.headers.get('set-cookie')!
  t.match(c, /moat_session=/)
  t.match(c, /HttpOnly/)
  t.match(c, /Secure/)
  t.match(c, /SameSite=Lax/)
})

t.test('login CSRF: a POST without the form cookie is refused', async (t) => {
  const { app } = await setup(t)
  const res = await app.request('/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _login: 'x', email: 'alice@example.com', password: PASSWORD }).toString(),
  })
  t.equal(res.status, 403)
  t.notOk(res.headers.get('set-cookie')?.includes('moat_session='))
})

t.test('throttling: a guesser waits, the right password is not even checked meanwhile; others are not slowed', async (t) => {
  const { app } = await setup(t)
  for (let i = 0; i < 3; i++) t.equal((await signIn(app, 'bob@example.com', 'not the password')).status, 401)
  const slowed = await postLogin(app, 'bob@example.com', PASSWORD)
  t.equal(slowed.status, 429)
  t.ok(Number(slowed.headers.get('retry-after')) >= 1, 'Retry-After says how long')
  t.match(await slowed.text(), /try again in \d+ seconds/)
  t.equal((await signIn(app, 'alice@example.com')).status, 303, 'another account is not slowed')
})

t.test('sessions end after the idle timeout', async (t) => {
  const { db } = await setup(t)
  const accounts = new Accounts(db)
  const r = await accounts.login('alice@example.com', PASSWORD, '127.0.0.1', 1_000_000)
  t.ok(r.ok)
  if (!r.ok) return
  t.ok(accounts.session(r.session.token, 1_000_000 + IDLE_TIMEOUT_MS - 1000))
  t.equal(accounts.session(r.session.token, 1_000_000 + 2 * IDLE_TIMEOUT_MS + 5000), null)
  t.equal(accounts.session('forged-token'), null)
})

t.test('CSRF: a state change without the session token is refused', async (t) => {
  const { app, ids } = await setup(t)
  const alice = await signIn(app, 'alice@example.com')
  const res = await post(app, `/quarantine/${ids.alicemail.quarantine}/release`, { cookie: alice.cookie })
  t.equal(res.status, 403)
  const wrong = await post(app, `/quarantine/${ids.alicemail.quarantine}/release`, { cookie: alice.cookie, csrf: 'x'.repeat(32) })
  t.equal(wrong.status, 403)
  const ok = await post(app, `/quarantine/${ids.alicemail.quarantine}/release`, alice)
  t.equal(ok.status, 303)
  const htmx = await app.request(`/quarantine/${ids.alicemail.quarantine}/delete`, { method: 'POST', headers: { Cookie: alice.cookie, 'X-CSRF-Token': alice.csrf } })
  t.equal(htmx.status, 303, 'the htmx header works as well as the form field')
})

t.test('end users see only their own quarantine; another tenant or user gets 404', async (t) => {
  const { app, ids, db } = await setup(t)
  const alice = await signIn(app, 'alice@example.com')
  const list = await (await app.request('/quarantine', { headers: { Cookie: alice.cookie } })).text()
  t.match(list, /alicemail cheap pills/)
  t.notMatch(list, /bobmail|hankmail/, "not bob's (same organisation), not hank's (another)")
  for (const other of [ids.bobmail.quarantine, ids.hankmail.quarantine]) {
    t.equal((await app.request(`/quarantine/${other}`, { headers: { Cookie: alice.cookie } })).status, 404)
    t.equal((await app.request(`/quarantine/${other}/html`, { headers: { Cookie: alice.cookie } })).status, 404)
    for (const action of ['release', 'delete', 'not-spam']) {
      t.equal((await post(app, `/quarantine/${other}/${action}`, alice)).status, 404, `${action} of another's entry`)
    }
  }
  t.equal((await post(app, '/quarantine/bulk', alice, { action: 'delete', ids: String(ids.hankmail.quarantine) })).status, 303)
  const left = db.prepare(`SELECT count(*) AS n FROM quarantine WHERE released_at IS NULL`).get() as { n: number }
  t.equal(left.n, 3, 'the bulk action skipped what is not hers: nothing changed')
  t.equal((await app.request(`/archive/${ids.hankmail.message}/eml`, { headers: { Cookie: alice.cookie } })).status, 404)
  t.equal((await app.request(`/archive/${ids.bobmail.message}`, { headers: { Cookie: alice.cookie } })).status, 404, "a colleague's mail is not hers")
  const own = await app.request(`/archive/${ids.alicemail.message}/eml`, { headers: { Cookie: alice.cookie } })
  t.equal(own.status, 200)
  t.match(await own.text(), /Subject: alicemail cheap pills/)
  const search = await (await app.request('/archive?q=cheap', { headers: { Cookie: alice.cookie } })).text()
  t.match(search, /alicemail/)
  t.notMatch(search, /bobmail|hankmail/)
  t.equal((await app.request('/status', { headers: { Cookie: alice.cookie } })).status, 404, 'no appliance status for a user')
})

t.test('"not spam" releases at once and leaves the lesson to the learn-reports job', async (t) => {
  const { app, ids, db } = await setup(t)
  const alice = await signIn(app, 'alice@example.com')
  t.equal((await post(app, `/quarantine/${ids.alicemail.quarantine}/not-spam`, alice)).status, 303)
  t.ok(db.prepare(`SELECT 1 FROM quarantine WHERE id = ? AND released_at IS NOT NULL`).get(ids.alicemail.quarantine), 'released')
  t.equal(pendingReports(db), 1, 'recorded as a ham report')
  t.equal((db.prepare(`SELECT count(*) AS n FROM classifier_models`).get() as { n: number }).n, 0, 'no model written on the click')
})

t.test('delivered spam is reported from the archive; every action says what it did', async (t) => {
  const { app, ids, db } = await setup(t)
  const alice = await signIn(app, 'alice@example.com')
  const page = await (await app.request(`/archive/${ids.alicemail.message}`, { headers: { Cookie: alice.cookie } })).text()
  t.match(page, new RegExp(`action="/archive/${ids.alicemail.message}/report-spam"`), 'received mail has "Report spam"')
  const res = await post(app, `/archive/${ids.alicemail.message}/report-spam`, alice)
  t.equal(res.status, 303)
  t.equal(res.headers.get('location'), `/archive/${ids.alicemail.message}?done=report-spam`)
  const report = db.prepare(`SELECT label, reported_by FROM classifier_reports`).all() as { label: string; reported_by: string }[]
  t.same(report.map((r) => r.label), ['spam'], 'recorded as a spam report for learn-reports')
  t.match(report[0].reported_by, /alice@example\.com: archive/)
  const after = await (await app.request(res.headers.get('location')!, { headers: { Cookie: alice.cookie } })).text()
  t.match(after, /<p class="done" role="status" id="done">Reported as spam/)
  t.equal((await post(app, `/archive/${ids.bobmail.message}/report-spam`, alice)).status, 404, "a colleague's message")
  t.equal((await post(app, `/archive/${ids.hankmail.message}/report-spam`, alice)).status, 404, "another tenant's message")
  t.equal((await post(app, `/archive/${ids.alicemail.message}/report-spam`, { cookie: alice.cookie })).status, 403, 'no CSRF token, no report')
  t.equal((db.prepare(`SELECT count(*) AS n FROM classifier_reports`).get() as { n: number }).n, 1, 'nothing else recorded')

  const released = await post(app, `/quarantine/${ids.alicemail.quarantine}/release`, alice)
  t.equal(released.headers.get('location'), '/quarantine?done=release&n=1')
  t.match(await (await app.request('/quarantine?done=release&n=1', { headers: { Cookie: alice.cookie } })).text(), /id="done">Released 1 message\.</)
  const bulk = await post(app, '/quarantine/bulk', alice, { action: 'delete', ids: String(ids.hankmail.quarantine) })
  t.equal(bulk.headers.get('location'), '/quarantine?done=delete&n=0', 'the count says what really happened: none of it was hers')
  const crafted = await (await app.request('/quarantine?done=%3Cscript%3E&n=1', { headers: { Cookie: alice.cookie } })).text()
  t.notMatch(crafted, /id="done"/, 'an unknown action shows no line')
})

t.test('organisation admins see their organisation only; the appliance admin sees all', async (t) => {
  const { app, ids } = await setup(t)
  const boss = await signIn(app, 'boss@example.com')
  const list = await (await app.request('/quarantine', { headers: { Cookie: boss.cookie } })).text()
  t.match(list, /alicemail/)
  t.match(list, /bobmail/)
  t.notMatch(list, /hankmail/)
  t.equal((await app.request(`/quarantine/${ids.hankmail.quarantine}`, { headers: { Cookie: boss.cookie } })).status, 404)
  t.equal((await post(app, `/quarantine/${ids.hankmail.quarantine}/release`, boss)).status, 404)
  t.equal((await app.request(`/archive/${ids.hankmail.message}/eml`, { headers: { Cookie: boss.cookie } })).status, 404)
  const preview = await app.request(`/quarantine/${ids.bobmail.quarantine}`, { headers: { Cookie: boss.cookie } })
  t.equal(preview.status, 200)
  const html = await preview.text()
  t.match(html, /CLASSIFIER_95<\/td><td class="num">6\.00/, 'the symbols and weights behind the verdict')
  t.match(html, /<iframe class="html" sandbox=""/)
  const frame = await app.request(`/quarantine/${ids.bobmail.quarantine}/html`, { headers: { Cookie: boss.cookie } })
  t.match(frame.headers.get('content-security-policy'), /default-src 'none'.*sandbox/, 'remote content blocked in the preview')
  t.match(await frame.text(), /tracker\.test/, 'the HTML as sent, inside the locked frame only')
  t.notMatch(html, /tracker\.test/, 'never in the page itself')

  const root = await signIn(app, 'root@moat.test')
  const all = await (await app.request('/quarantine', { headers: { Cookie: root.cookie } })).text()
  t.match(all, /alicemail/)
  t.match(all, /hankmail/)
  t.equal((await app.request('/status', { headers: { Cookie: root.cookie } })).status, 200)
})

t.test('first start: the one-time setup link creates the admin, then is gone', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const accounts = new Accounts(db)
  const token = accounts.setupToken()!
  const app = createApp({ db, spool: new Spool(`${dir}/spool`), version: '1', clamd: null })
  const form = { email: 'admin@moat.test', password: PASSWORD }
  const bad = await app.request('/setup', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...form, token: 'guess' }).toString() })
  t.equal(bad.status, 403)
  const ok = await app.request('/setup', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...form, token }).toString() })
  t.equal(ok.status, 303)
  t.equal((await app.request(`/setup?token=${token}`)).status, 404, 'gone once an admin exists')
  t.equal(accounts.setupToken(), null)
  t.equal((await signIn(app, 'admin@moat.test')).status, 303)
})

t.test('health and assets need no session', async (t) => {
  const { app } = await setup(t)
  const health = await app.request('/healthz')
  t.match(await health.json(), { ok: true, version: '9.9.9', organisations: 2, antivirus: /OFF/ })
  const js = await app.request('/static/htmx.min.js')
  t.equal(js.status, 200)
  t.match(js.headers.get('content-type'), /javascript/)
  t.equal((await app.request('/static/../package.json')).status, 404)
})

t.test('lists: "allow sender" from the preview adds to her own list and releases; others cannot touch it', async (t) => {
  const { app, ids, db } = await setup(t)
  const alice = await signIn(app, 'alice@example.com')
  t.equal((await post(app, `/quarantine/${ids.alicemail.quarantine}/allow-sender`, alice)).status, 303)
  const row = db.prepare(`SELECT kind, pattern, user_id FROM sender_lists`).get() as { kind: string; pattern: string; user_id: number }
  t.match(row, { kind: 'allow', pattern: 'spammer@bad.test' })
  t.ok(row.user_id, "on her own list, not the organisation's")
  t.ok((db.prepare(`SELECT released_at FROM quarantine WHERE id = ?`).get(ids.alicemail.quarantine) as { released_at: number }).released_at, 'and released')
  t.equal((await post(app, `/quarantine/${ids.hankmail.quarantine}/block-sender`, alice)).status, 404, "not from another tenant's entry")
  const entryId = (db.prepare(`SELECT id FROM sender_lists`).get() as { id: number }).id

  const bob = await signIn(app, 'bob@example.com')
  t.notMatch(await (await app.request('/lists', { headers: { Cookie: bob.cookie } })).text(), /spammer@bad\.test/, "bob does not see alice's list")
  t.equal((await post(app, `/lists/${entryId}/delete`, bob)).status, 404)
  const hank = await signIn(app, 'hank@globex.test')
  t.equal((await post(app, `/lists/${entryId}/delete`, hank)).status, 404)
  const acmeOrg = (db.prepare(`SELECT id FROM organisations WHERE name = 'acme'`).get() as { id: number }).id
  const boss = await signIn(app, 'boss@example.com')
  t.match(await (await app.request('/lists', { headers: { Cookie: boss.cookie } })).text(), /spammer@bad\.test/, 'her organisation admin sees it')
  const globexOrg = (db.prepare(`SELECT id FROM organisations WHERE name = 'globex'`).get() as { id: number }).id
  t.equal((await post(app, '/lists', boss, { kind: 'block', pattern: '@evil.test', org: String(globexOrg) })).status, 404, "not into another organisation's list")
  t.equal((await post(app, '/lists', boss, { kind: 'block', pattern: '@evil.test', org: String(acmeOrg) })).status, 303)
  t.equal((await post(app, '/lists', boss, { kind: 'block', pattern: 'no way', org: String(acmeOrg) })).status, 400)
  t.equal((await post(app, `/lists/${entryId}/delete`, alice)).status, 303, 'she removes her own')
})

t.test("lists: an admin allowing a sender from a user's quarantine entry chooses that user or the whole organisation", async (t) => {
  const { app, ids, db } = await setup(t)
  const boss = await signIn(app, 'boss@example.com')
  const page = await (await app.request(`/quarantine/${ids.bobmail.quarantine}`, { headers: { Cookie: boss.cookie } })).text()
  t.match(page, /Allow spammer@bad\.test for bob@example\.com/, 'for the user')
  t.match(page, /Allow spammer@bad\.test for all of acme/, 'or for the organisation')
  const bob = db.prepare(`SELECT id FROM users WHERE email = 'bob@example.com'`).pluck().get() as number
  t.equal((await post(app, `/quarantine/${ids.bobmail.quarantine}/block-sender`, boss, { for: 'user' })).status, 303)
  t.match(db.prepare(`SELECT kind, user_id FROM sender_lists`).all(), [{ kind: 'block', user_id: bob }], "on bob's own list")
  t.equal((await post(app, `/quarantine/${ids.alicemail.quarantine}/allow-sender`, boss, { for: 'org' })).status, 303)
  t.match(db.prepare(`SELECT kind, user_id FROM sender_lists WHERE kind = 'allow'`).all(), [{ kind: 'allow', user_id: null }], "on the organisation's list")
  t.match(db.prepare(`SELECT detail FROM audit_log WHERE action = 'list-add' ORDER BY id`).pluck().all(), [/for bob@example\.com$/, /quarantine entry \d+$/], 'audited, with whom it was for')
  const alice = await signIn(app, 'alice@example.com')
  const own = await (await app.request(`/quarantine/${ids.alicemail.quarantine}`, { headers: { Cookie: alice.cookie } })).text()
  t.notMatch(own, /for all of/, 'a user is not asked: her own list is the only one she has')
  t.equal((await post(app, `/quarantine/${ids.alicemail.quarantine}/allow-sender`, alice, { for: 'org' })).status, 303)
  t.equal(db.prepare(`SELECT count(*) FROM sender_lists WHERE kind = 'allow' AND user_id IS NOT NULL`).pluck().get(), 1, "and asking for the organisation's list still gives her own")
})

t.test('API: bearer tokens only, the same scope as the UI, 404 across tenants', async (t) => {
  const { app, ids, db } = await setup(t)
  const accounts = new Accounts(db)
  const principal = async (email: string) => {
    const r = await accounts.login(email, PASSWORD, '127.0.0.1')
    if (!r.ok) throw new Error('login')
    return r.session.principal
  }
  const aliceToken = accounts.createToken(await principal('alice@example.com'), 'notifier').token
  const hankToken = accounts.createToken(await principal('hank@globex.test'), 'outlook').token
  const api = (path: string, token: string | null, init: RequestInit = {}) =>
    app.request(path, { ...init, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...((init.headers as Record<string, string>) ?? {}) } })

  const spec = await api('/api/v1/openapi.json', null)
  t.equal(spec.status, 200, 'the description needs no token')
  t.match(await spec.json(), { openapi: /^3\./, paths: { '/api/v1/quarantine': {} } })
  t.equal((await api('/api/v1/quarantine', null)).status, 401)
  t.equal((await api('/api/v1/quarantine', 'moat_forged')).status, 401)
  const alice = await signIn(app, 'alice@example.com')
  t.equal((await app.request('/api/v1/quarantine', { headers: { Cookie: alice.cookie } })).status, 401, 'a session cookie is not an API credential')

  t.match(await (await api('/api/v1/me', aliceToken)).json(), { email: 'alice@example.com', role: 'user' })
  const list = (await (await api('/api/v1/quarantine', aliceToken)).json()) as { items: { id: number; symbols: unknown[] }[] }
  t.same(list.items.map((i) => i.id), [ids.alicemail.quarantine], 'her own entries only')
  t.ok(list.items[0].symbols.length, 'with the symbols behind the verdict')
  t.match(await (await api(`/api/v1/counts?since=${new Date(Date.now() - 3600_000).toISOString()}`, aliceToken)).json(), { spam: 1, surespam: 0 })
  t.equal((await api(`/api/v1/quarantine/${ids.hankmail.quarantine}`, aliceToken)).status, 404)
  t.equal((await api(`/api/v1/quarantine/${ids.hankmail.quarantine}/release`, aliceToken, { method: 'POST' })).status, 404)
  t.equal((await api(`/api/v1/archive/${ids.hankmail.message}/eml`, aliceToken)).status, 404)
  t.equal((await api(`/api/v1/archive/${ids.alicemail.message}/eml`, hankToken)).status, 404)
  const search = (await (await api('/api/v1/archive?q=cheap', hankToken)).json()) as { items: { subject: string }[] }
  t.same(search.items.map((i) => i.subject), ['hankmail cheap pills'])

  const rel = await api(`/api/v1/quarantine/${ids.alicemail.quarantine}/release`, aliceToken, { method: 'POST' })
  t.match(await rel.json(), { released: true })
  t.ok(db.prepare(`SELECT 1 FROM deliveries WHERE reason = 'released' AND rcpt = 'alice@example.com'`).get(), 'a release delivery was queued')

  const models = () => (db.prepare(`SELECT count(*) AS n FROM classifier_models`).get() as { n: number }).n
  const before = models()
  const report = await api('/api/v1/report-spam', aliceToken, { method: 'POST', headers: { 'Content-Type': 'message/rfc822' }, body: 'From: x@spam.test\r\nSubject: cheap meds\r\n\r\nbuy cheap meds now\r\n' })
  t.equal(report.status, 200)
  const reported = (await report.json()) as { learned: string; report: number }
  t.equal(reported.learned, 'spam')
  t.equal(pendingReports(db), 1, 'the report waits for the learn-reports job')
  t.equal(models(), before, 'no model version per click')
  t.match(await learnPendingReports(db), { learned: 1 })
  t.equal(models(), before + 1, 'the job made it a new model version')

  // Spam that was delivered: the archived original, found by its Message-ID among her own
  // mail, says what the receiving server knew of it (another tenant's copy does not count).
  const store = new MailStore(db, new RawStore(db, new Spool(`${t.testdir()}/spool`)), new GroupCommitter(db))
  const slipped = (rcpt: string, orgId: number, rbl: string) =>
    store.accept({
      queueId: `slipped-${rcpt}`, direction: 'in', raw: Buffer.from('Message-ID: <slipped@bad.test>\r\nSubject: hi\r\n\r\nhi\r\n'), receivedAt: Date.now(), clientIp: '192.0.2.9',
      helo: 'bad.test', mailFrom: 'x@bad.test', fromHeader: 'x@bad.test', subject: 'hi', messageIdHeader: '<slipped@bad.test>', bodyText: 'hi',
      parts: [{ orgId, verdict: 'clean', score: 2, symbols: [{ name: rbl, weight: 2.5 }, { name: 'CLASSIFIER_70', weight: 0.5 }], rcpts: [{ address: rcpt, userId: null, action: 'deliver' }] }],
    })
  const orgOf = (name: string) => (db.prepare(`SELECT id FROM organisations WHERE name = ?`).get(name) as { id: number }).id
  await slipped('alice@example.com', orgOf('acme'), 'RBL_SPAMCOP')
  await slipped('hank@globex.test', orgOf('globex'), 'RBL_SPAMHAUS_ZEN')
  const again = await api('/api/v1/report-spam', aliceToken, {
    method: 'POST', headers: { 'Content-Type': 'message/rfc822' },
    body: 'Received: by her mail server\r\nMessage-ID: <slipped@bad.test>\r\nSubject: hi\r\n\r\nhi\r\n',
  })
  const { report: slippedReport } = (await again.json()) as { report: number }
  t.same(db.prepare(`SELECT symbols FROM classifier_reports WHERE id = ?`).get(slippedReport), { symbols: 'RBL_SPAMCOP' }, "her copy's blocklist answer, not hank's")

  const added = await api('/api/v1/lists', aliceToken, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ kind: 'block', pattern: '@spam.test' }) })
  t.equal(added.status, 201)
  const entryId = ((await added.json()) as { id: number }).id
  t.equal((await api(`/api/v1/lists/${entryId}`, hankToken, { method: 'DELETE' })).status, 404, "not hank's to remove")
  t.equal((await api(`/api/v1/lists/${entryId}`, aliceToken, { method: 'DELETE' })).status, 204)

  const revoked = accounts.revokeToken(await principal('alice@example.com'), accounts.listTokens(await principal('alice@example.com'))[0].id)
  t.ok(revoked)
  t.equal((await api('/api/v1/me', aliceToken)).status, 401, 'a revoked token stops working')
})

t.test('the account page makes a token that the API accepts, shown once', async (t) => {
  const { app } = await setup(t)
  const bob = await signIn(app, 'bob@example.com')
  const refused = await post(app, '/account/tokens', bob, { name: 'laptop', password: 'not my password' })
  t.equal(refused.status, 403, 'a token needs the password again')
  t.match(await refused.text(), /no token was created/)
  const page = await (await post(app, '/account/tokens', bob, { name: 'laptop', password: PASSWORD })).text()
  const token = /<code id="new-token">(moat_[\w-]+)<\/code>/.exec(page)?.[1]
  t.ok(token, 'the new token is on the page')
  t.match(await (await app.request('/api/v1/me', { headers: { Authorization: `Bearer ${token}` } })).json(), { email: 'bob@example.com' })
  const again = await (await app.request('/account', { headers: { Cookie: bob.cookie } })).text()
  t.notMatch(again, new RegExp(token!), 'not shown again')
  t.match(again, /laptop/)
})

t.test('setup wizard: the first organisation, its domain and mail server; a bad one leaves nothing behind', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const token = new Accounts(db).setupToken()!
  let done = 0
  const app = createApp({ db, spool: new Spool(`${dir}/spool`), version: '1', clamd: null, onSetupDone: () => done++ })
  const send = (fields: Record<string, string>) =>
    app.request('/setup', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, email: 'admin@moat.test', password: PASSWORD, ...fields }).toString() })
  const bad = await send({ org: 'acme', domain: 'not a domain', deliver_to: 'mail.example.com' })
  t.equal(bad.status, 400)
  t.match(await bad.text(), /is not a domain name/)
  t.equal((db.prepare(`SELECT count(*) AS n FROM organisations`).get() as { n: number }).n, 0, 'no organisation left behind')
  t.equal((db.prepare(`SELECT count(*) AS n FROM admins`).get() as { n: number }).n, 0, 'no admin either: the link still works')
  const ok = await send({ org: 'acme', domain: 'example.com', deliver_to: '10.0.2.100:25', catch_all: 'on' })
  t.equal(ok.status, 303)
  t.equal(done, 1, 'the console link is withdrawn')
  t.match(new Tenants(db).domainByName('example.com'), { deliver_host: '10.0.2.100', deliver_port: 25, catch_all: 1 })
})

t.test('delivery monitor page: plots and whose side, for the appliance admin only', async (t) => {
  const { app, db } = await setup(t)
  const { DeliveryMonitor } = require('../../appliance/services/delivery-monitor')
  const m = new DeliveryMonitor(db)
  const now = Date.now()
  const base = { queueId: 'q', direction: 'out', domain: 'example.net', mxHost: 'mx.example.net', port: 25, tls: false, attempt: 1, recipients: 1 }
  await m.record({ ...base, at: now - 3 * 3_600_000, ip: '192.0.2.7', outcome: 'delivered', code: 250, response: '250 ok', connectMs: 30, totalMs: 400 })
  await m.record({ ...base, at: now - 3_600_000, ip: '192.0.2.7', outcome: 'bounced', code: 554, response: '554 5.7.1 blocked using zen.spamhaus.org', connectMs: 35, totalMs: 300 })
  await m.record({ ...base, at: now, ip: '198.51.100.9', outcome: 'failed', code: null, response: 'connect ECONNREFUSED 198.51.100.9:25', connectMs: 2, totalMs: 2 })
  const root = await signIn(app, 'root@moat.test')
  const page = await app.request('/delivery', { headers: { Cookie: root.cookie } })
  t.equal(page.status, 200)
  const html = await page.text()
  t.match(html, /<svg viewBox="0 0 640 180" role="img" aria-label="Attempts per hour"/)
  t.ok((html.match(/<rect class="s-/g) ?? []).length >= 3, 'bars for the hours with attempts')
  t.match(html, /class="side-ours">1 × OUR side: rejected because our address is on a blocklist/)
  t.match(html, /1 × their side: connection refused/)
  const one = await (await app.request('/delivery?ip=198.51.100.9', { headers: { Cookie: root.cookie } })).text()
  t.notMatch(one, /192\.0\.2\.7/, 'filtered to one destination')
  const boss = await signIn(app, 'boss@example.com')
  t.equal((await app.request('/delivery', { headers: { Cookie: boss.cookie } })).status, 404, 'appliance-wide: not for an organisation admin')
})

t.test('About: the version, and a newer release from the update feed (a file, then a loopback URL)', async (t) => {
  const { db } = await setup(t)
  const dir = t.testdir()
  const feedFile = `${dir}/feed.json`
  require('node:fs').writeFileSync(feedFile, JSON.stringify({ latest: '9.10.0', url: 'https://updates.example/moat-9.10.0.tar.gz', notes: 'Faster quarantine.' }))
  const app = createApp({ db, spool: new Spool(`${dir}/spool`), version: '9.9.9', clamd: null, updateFeed: feedFile })
  const alice = await signIn(app, 'alice@example.com')
  const html = await (await app.request('/about', { headers: { Cookie: alice.cookie } })).text()
  t.match(html, /<td id="version">9\.9\.9<\/td>/)
  t.match(html, /Moat 9\.10\.0 is available \(this is 9\.9\.9\)/, '9.10 is newer than 9.9, not older')
  t.match(html, /href="https:\/\/updates\.example\/moat-9\.10\.0\.tar\.gz"/)
  const made = await (await post(app, '/account/tokens', alice, { name: 'notifier', password: PASSWORD })).text()
  const token = /<code id="new-token">(moat_[\w-]+)<\/code>/.exec(made)?.[1]
  const version = await app.request('/api/v1/version', { headers: { Authorization: `Bearer ${token}` } })
  t.match(await version.json(), { version: '9.9.9', latest: '9.10.0', newer: true, notes: 'Faster quarantine.', error: null }, 'the clients see what About shows')
  t.equal((await app.request('/api/v1/version')).status, 401, 'not without a token')

  const http = require('node:http')
  const server = http.createServer((_req: unknown, res: { end(s: string): void }) => res.end(JSON.stringify({ latest: '9.9.9' })))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${server.address().port}/feed.json`
  const same = createApp({ db, spool: new Spool(`${dir}/spool`), version: '9.9.9', clamd: null, updateFeed: url })
  const s2 = await signIn(same, 'bob@example.com')
  t.match(await (await same.request('/about', { headers: { Cookie: s2.cookie } })).text(), /This is the newest release \(9\.9\.9\)/)
  const broken = createApp({ db, spool: new Spool(`${dir}/spool`), version: '9.9.9', clamd: null, updateFeed: `${dir}/missing.json` })
  const s3 = await signIn(broken, 'hank@globex.test')
  const b = await broken.request('/about', { headers: { Cookie: s3.cookie } })
  t.equal(b.status, 200, 'a broken feed does not break the page')
  t.match(await b.text(), /could not check for updates/)
})

t.test('TOTP: admins must set it up; a password alone opens nothing; codes work once', async (t) => {
  const { app, db } = await setup(t)
  const accounts = new Accounts(db)
  await accounts.createAdmin('msp@moat.test', PASSWORD, 'msp_admin')
  const res = await postLogin(app, 'msp@moat.test', PASSWORD)
  const cookie = `moat_session=${/moat_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]}`
  t.equal(res.status, 303)
  const forced = await app.request('/quarantine', { headers: { Cookie: cookie } })
  t.equal(forced.headers.get('location'), '/account/totp', 'an admin without a second factor must set one up first')
  const page = await (await app.request('/account/totp', { headers: { Cookie: cookie } })).text()
  const secret = /<code id="totp-secret">([A-Z2-7]{32})<\/code>/.exec(page)![1]
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]
  const enroll = (code: string) =>
    app.request('/account/totp', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie }, body: new URLSearchParams({ _csrf: csrf, secret, code }).toString() })
  t.equal((await enroll('000000')).status, 400, 'a wrong code does not turn it on')
  // The step is kept: a half-minute boundary passing mid-test must not make "the same code" another one.
  const enrolStep = stepOf(Date.now()) - 1
  t.equal((await enroll(codeAt(secret, enrolStep))).status, 303)
  t.equal((await app.request('/quarantine', { headers: { Cookie: cookie } })).status, 200, 'then the admin can work')

  // The next sign-in: password, then the code.
  const again = await postLogin(app, 'msp@moat.test', PASSWORD)
  t.match(again.headers.get('location'), /^\/login\/totp/)
  const pending = `moat_session=${/moat_session=([^;]+)/.exec(again.headers.get('set-cookie') ?? '')![1]}`
  t.match((await app.request('/quarantine', { headers: { Cookie: pending } })).headers.get('location'), /^\/login\/totp/, 'a password alone opens nothing')
  t.equal((await app.request('/api/v1/me', { headers: { Cookie: pending } })).status, 401)
  const form = await (await app.request('/login/totp', { headers: { Cookie: pending } })).text()
  const csrf2 = /name="_csrf" value="([^"]+)"/.exec(form)![1]
  const step = (code: string) =>
    app.request('/login/totp', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: pending }, body: new URLSearchParams({ _csrf: csrf2, code }).toString() })
  t.equal((await step(codeAt(secret, enrolStep))).status, 401, 'the code used to enrol does not work again')
  t.equal((await step(codeAt(secret, stepOf(Date.now())))).status, 303)
  t.equal((await app.request('/quarantine', { headers: { Cookie: pending } })).status, 200)
  const users = await signIn(app, 'bob@example.com')
  t.equal((await app.request('/quarantine', { headers: { Cookie: users.cookie } })).status, 200, 'optional for end users')
})

t.test('password reset: the same answer for any address, a single-use link by mail, sessions ended', async (t) => {
  const { app, db } = await setup(t)
  const alice = await signIn(app, 'alice@example.com')
  const ask = (email: string) => app.request('/reset', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ email }).toString() })
  const known = await (await ask('alice@example.com')).text()
  const unknown = await (await ask('nobody@example.com')).text()
  t.equal(known.replace(/value="[^"]*"/g, ''), unknown.replace(/value="[^"]*"/g, ''), 'no telling whether an account exists')
  const mail = db.prepare(`SELECT r.data FROM raw_messages r JOIN messages m ON m.raw_id = r.id WHERE m.queue_id LIKE 'reset-user-%'`).get() as { data: Buffer }
  t.ok(db.prepare(`SELECT 1 FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.queue_id LIKE 'reset-user-%' AND d.rcpt = 'alice@example.com'`).get(), 'the link goes out to her mailbox')
  const token = /\/reset\/([\w-]{20,})/.exec(mail.data.toString())![1]
  t.equal((await app.request(`/reset/${token}`)).status, 200)
  const set = (password: string) => app.request(`/reset/${token}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ password }).toString() })
  t.equal((await set('short')).status, 400, 'a weak password is refused, the link still works')
  t.equal((await set('a brand new password')).status, 200)
  t.equal((await app.request('/quarantine', { headers: { Cookie: alice.cookie } })).status, 303, 'her old sessions are gone')
  t.equal((await signIn(app, 'alice@example.com', 'a brand new password')).status, 303)
  t.equal((await set('another new password')).status, 410, 'single use')
  for (let i = 0; i < 4; i++) await ask('bob@example.com')
  t.equal((db.prepare(`SELECT count(*) AS n FROM messages WHERE queue_id LIKE 'reset-user-%' AND rcpt_to = 'bob@example.com'`).get() as { n: number }).n, 3, 'at most three links an hour')
})

t.test('organisations: dashboard in scope, domains, CSV import with progress, no importing into another tenant', async (t) => {
  const { app, db } = await setup(t)
  const root = await signIn(app, 'root@moat.test')
  const dash = await (await app.request('/orgs', { headers: { Cookie: root.cookie } })).text()
  t.match(dash, /acme/)
  t.match(dash, /globex/)
  const acme = (db.prepare(`SELECT id FROM organisations WHERE name = 'acme'`).get() as { id: number }).id
  const globex = (db.prepare(`SELECT id FROM organisations WHERE name = 'globex'`).get() as { id: number }).id
  const boss = await signIn(app, 'boss@example.com')
  t.equal((await app.request('/orgs', { headers: { Cookie: boss.cookie } })).status, 404, 'the cross-organisation dashboard is for MSP and appliance admins')
  t.equal((await app.request(`/orgs/${acme}`, { headers: { Cookie: boss.cookie } })).status, 200, 'an organisation admin has their own page')
  t.equal((await app.request(`/orgs/${globex}`, { headers: { Cookie: boss.cookie } })).status, 404)
  t.equal((await post(app, `/orgs/${globex}/domains`, boss, { name: 'stolen.test', deliver_to: '127.0.0.1' })).status, 404)
  const orgPage = await (await app.request(`/orgs/${acme}`, { headers: { Cookie: boss.cookie } })).text()
  t.match(orgPage, /placeholder="quarantine@example\.com"/, 'digests come from quarantine@ the first domain unless set')
  t.equal((await post(app, `/orgs/${acme}/digest-sender`, boss, { address: 'Spam-Report@Example.com' })).status, 303)
  t.equal((db.prepare(`SELECT digest_from FROM organisations WHERE id = ?`).get(acme) as { digest_from: string }).digest_from, 'spam-report@example.com')
  t.equal((await post(app, `/orgs/${acme}/digest-sender`, boss, { address: 'not an address' })).status, 400)
  t.equal((await post(app, `/orgs/${globex}/digest-sender`, boss, { address: 'x@globex.test' })).status, 404, "not another tenant's")

  const csv = 'email,display_name\nnew1@example.com,New One\nnew2@example.com,New Two\nsneaky@globex.test,Not Yours\nnot-an-address\n'
  const form = new FormData()
  form.set('_csrf', boss.csrf)
  form.set('file', new File([csv], 'users.csv', { type: 'text/csv' }))
  const started = await app.request(`/orgs/${acme}/import`, { method: 'POST', headers: { Cookie: boss.cookie }, body: form })
  t.equal(started.status, 200)
  const page = await started.text()
  t.match(page, /<progress max="4"/)
  const poll = /hx-get="(\/orgs\/\d+\/import\/[\w-]+)"/.exec(page)![1]
  let done = ''
  for (let i = 0; i < 50 && !/Done:/.test(done); i++) {
    done = await (await app.request(poll, { headers: { Cookie: boss.cookie, 'HX-Request': 'true' } })).text()
    await new Promise((r) => setTimeout(r, 20))
  }
  t.match(done, /Done: 2 users created, 0 existed already, 2 rows with errors/)
  t.match(done, /line 4: domain &quot;globex.test&quot; is not provisioned|line 4: domain "globex.test" is not provisioned/)
  t.notMatch(done, /hx-trigger/, 'polling stops when it is done')
  t.notOk(db.prepare(`SELECT 1 FROM users WHERE email = 'sneaky@globex.test'`).get(), "nothing went into the other tenant's domain")
  const hank = await signIn(app, 'hank@globex.test')
  t.equal((await app.request(poll, { headers: { Cookie: hank.cookie } })).status, 404, "another tenant's import job is not visible")
})

t.test('alerts: each admin sees their organisations’ alerts on a banner, acknowledges only those', async (t) => {
  const { app, db } = await setup(t)
  const org = (name: string) => (db.prepare(`SELECT id FROM organisations WHERE name = ?`).get(name) as { id: number }).id
  const add = db.prepare(`INSERT INTO alerts (org_id, kind, message, created_at) VALUES (?, ?, ?, ?)`)
  const acmeAlert = Number(add.run(org('acme'), 'sender-held', 'Outbound mail from spammer@example.com is held', Date.now()).lastInsertRowid)
  const globexAlert = Number(add.run(org('globex'), 'sender-held', 'Outbound mail from x@globex.test is held', Date.now()).lastInsertRowid)
  add.run(null, 'rbl-listed', 'Our outbound address is listed: 192.0.2.25 on bl.test', Date.now())
  const boss = await signIn(app, 'boss@example.com')
  const page = await (await app.request('/quarantine', { headers: { Cookie: boss.cookie } })).text()
  t.match(page, /<p class="banner" role="alert"><a href="\/alerts">1 open alert<\/a>/)
  const list = await (await app.request('/alerts', { headers: { Cookie: boss.cookie } })).text()
  t.match(list, /spammer@example\.com is held/)
  t.notMatch(list, /x@globex\.test|192\.0\.2\.25/, "not another organisation's, not the appliance's")
  t.equal((await post(app, `/alerts/${globexAlert}/ack`, boss)).status, 404)
  t.equal((await post(app, `/alerts/${acmeAlert}/ack`, boss)).status, 303)
  t.notMatch(await (await app.request('/quarantine', { headers: { Cookie: boss.cookie } })).text(), /class="banner"/, 'gone once acknowledged')
  const root = await signIn(app, 'root@moat.test')
  t.match(await (await app.request('/quarantine', { headers: { Cookie: root.cookie } })).text(), /2 open alerts/)
  const alice = await signIn(app, 'alice@example.com')
  t.notMatch(await (await app.request('/quarantine', { headers: { Cookie: alice.cookie } })).text(), /class="banner"/, 'no alerts for end users')
  t.equal((await app.request('/alerts', { headers: { Cookie: alice.cookie } })).status, 404)
})

t.test('setup wizard on the appliance: host name and network are checked first, then left for the root unit', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const token = new Accounts(db).setupToken()!
  const app = createApp({ db, spool: new Spool(`${dir}/spool`), version: '1', clamd: null, dataDir: dir, hostname: 'moat', hostSettings: true })
  t.match(await (await app.request(`/setup?token=${token}`)).text(), /name="hostname"[^>]*value="moat"/, 'the current name is offered')
  const send = (fields: Record<string, string>) =>
    app.request('/setup', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, email: 'admin@moat.test', password: PASSWORD, hostname: 'mx1.example.com', ...fields }).toString() })
  const bad = await send({ net_mode: 'static', address: '10.0.2.15/24', gateway: '10.0.3.1', dns: '10.0.2.3' })
  t.equal(bad.status, 400)
  t.match(await bad.text(), /gateway 10\.0\.3\.1 is not in 10\.0\.2\.15\/24/)
  t.equal((db.prepare(`SELECT count(*) AS n FROM admins`).get() as { n: number }).n, 0, 'nothing created: the link still works')
  t.notOk(fs.existsSync(requestFile(dir)), 'nothing requested')
  const ok = await send({ net_mode: 'static', address: '10.0.2.15/24', gateway: '10.0.2.2', dns: '10.0.2.3' })
  t.equal(ok.status, 200)
  t.match(await ok.text(), /now called <strong>mx1\.example\.com<\/strong> and moves to 10\.0\.2\.15/)
  t.same(JSON.parse(fs.readFileSync(requestFile(dir), 'utf8')), { hostname: 'mx1.example.com', network: { mode: 'static', address: '10.0.2.15', prefix: 24, gateway: '10.0.2.2', dns: ['10.0.2.3'] } })
})
