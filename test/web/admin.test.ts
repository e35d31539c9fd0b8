/*
 * The admin screens through app.request(): organisation policy, suspension, domains, users,
 * statistics, rules, the audit log, switching into an organisation, and the system page.
 * Every change aimed at another tenant's object by id answers 404.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { Tenants } from '../../appliance/services/tenants'
import { requestFile } from '../../appliance/services/host-settings'
import { makeReleaseKey, packRelease } from '../../appliance/services/release-package'
import { Spool } from '../../appliance/services/spool'
import { incomingFile } from '../../appliance/services/updater'
import { createApp } from '../../web/app'
import { type App, post, setup, signIn } from '../helpers/web'

const get = async (app: App, p: string, who: { cookie: string }) => {
  const res = await app.request(p, { headers: { Cookie: who.cookie } })
  return { status: res.status, text: await res.text() }
}

function multipart(who: { cookie: string; csrf: string }, files: Record<string, string>): RequestInit {
  const form = new FormData()
  form.set('_csrf', who.csrf)
  for (const [k, v] of Object.entries(files)) form.set(k, new File([v], `${k}.pem`))
  return { method: 'POST', headers: { Cookie: who.cookie }, body: form }
}

t.test('policy: an organisation admin edits their own, validated; another organisation is a 404', async (t) => {
  const { app, db } = await setup(t)
  const tenants = new Tenants(db)
  const acme = tenants.orgByName('acme')!
  const globex = tenants.orgByName('globex')!
  const boss = await signIn(app, 'boss@example.com')
  const page = await get(app, `/orgs/${acme.id}`, boss)
  t.equal(page.status, 200)
  t.match(page.text, /name="attachment_action"/)
  const fields = { spam_threshold: '4.5', surespam_threshold: '9', virus_action: 'quarantine', attachment_action: 'strip', dmarc_action: 'score', backscatter_action: 'reject', allowlist_skips_rbl_delay: '1', max_message_mb: '20', archive_retention_days: '100', quarantine_retention_days: '14', outbound_hourly_limit: '500', outbound_spam_limit: '5' }
  t.equal((await post(app, `/orgs/${acme.id}/policy`, boss, fields)).status, 303)
  t.match(tenants.orgById(acme.id), { spam_threshold: 4.5, surespam_threshold: 9, virus_action: 'quarantine', attachment_action: 'strip', dmarc_action: 'score', backscatter_action: 'reject', allowlist_skips_rbl_delay: 1, max_message_bytes: 20 * 1048576, archive_retention_days: 100 })
  const bad = await post(app, `/orgs/${acme.id}/policy`, boss, { ...fields, surespam_threshold: '3' })
  t.equal(bad.status, 400)
  t.match(await bad.text(), /surespam threshold must not be below the spam threshold/)
  t.equal(tenants.orgById(acme.id)!.surespam_threshold, 9, 'a refused change changes nothing')
  t.equal((await post(app, `/orgs/${globex.id}/policy`, boss, fields)).status, 404)
  t.equal(tenants.orgById(globex.id)!.attachment_action, 'quarantine')
  t.equal((await post(app, `/orgs/${acme.id}/suspend`, boss, { suspended: 'on' })).status, 404, 'an organisation admin cannot suspend')
  const domain = tenants.domainByName('example.com')!
  t.equal((await post(app, `/orgs/${acme.id}/domains/${domain.id}/tag-mode`, boss, { value: 'on' })).status, 303)
  t.equal(tenants.domainByName('example.com')!.tag_mode, 1)
  const theirs = tenants.domainByName('globex.test')!
  t.equal((await post(app, `/orgs/${acme.id}/domains/${theirs.id}/catch-all`, boss, { value: 'on' })).status, 404)
  t.equal((await post(app, `/orgs/${globex.id}/domains/${theirs.id}/catch-all`, boss, { value: 'on' })).status, 404)
  t.equal(tenants.domainByName('globex.test')!.catch_all, 0)
  t.match(await (await app.request(`/orgs/${acme.id}`, { headers: { Cookie: boss.cookie } })).text(), /Verify recipients with its server: off/)
  t.equal((await post(app, `/orgs/${acme.id}/domains/${domain.id}/verify-recipients`, boss, { value: 'on' })).status, 303)
  t.equal(tenants.domainByName('example.com')!.verify_recipients, 1, 'recipient verification switched on for its own domain')
  t.equal((await post(app, `/orgs/${acme.id}/domains/${theirs.id}/verify-recipients`, boss, { value: 'on' })).status, 404)
  t.equal(tenants.domainByName('globex.test')!.verify_recipients, 0, "not for another organisation's")
  t.equal((await post(app, `/orgs/${acme.id}/digests`, boss, { value: 'on' })).status, 303)
  t.same(db.prepare(`SELECT DISTINCT digest_enabled AS d FROM users WHERE org_id = ?`).all(acme.id), [{ d: 1 }])
  t.same(db.prepare(`SELECT DISTINCT digest_enabled AS d FROM users WHERE org_id = ?`).all(globex.id), [{ d: 0 }])
})

t.test('suspending an organisation: its users cannot sign in, and it can be resumed', async (t) => {
  const { app, db } = await setup(t)
  const globex = new Tenants(db).orgByName('globex')!
  const root = await signIn(app, 'root@moat.test')
  t.equal((await post(app, `/orgs/${globex.id}/suspend`, root, { suspended: 'on' })).status, 303)
  t.equal((await signIn(app, 'hank@globex.test')).status, 401)
  t.match((await get(app, '/orgs', root)).text, /globex<\/a> \(suspended\)/)
  await post(app, `/orgs/${globex.id}/suspend`, root, { suspended: 'off' })
  t.equal((await signIn(app, 'hank@globex.test')).status, 303)
})

t.test('users: list, add within the organisation only, change a role, remove; never oneself or another tenant', async (t) => {
  const { app, db } = await setup(t)
  const tenants = new Tenants(db)
  const acme = tenants.orgByName('acme')!
  const globex = tenants.orgByName('globex')!
  const boss = await signIn(app, 'boss@example.com')
  const list = await get(app, `/orgs/${acme.id}/users`, boss)
  t.match(list.text, /alice@example\.com[\s\S]*bob@example\.com/)
  t.notMatch(list.text, /hank@globex/)
  t.match((await get(app, `/orgs/${acme.id}/users?q=ali`, boss)).text, /alice@example\.com/)
  t.notMatch((await get(app, `/orgs/${acme.id}/users?q=ali`, boss)).text, /bob@example\.com/)
  t.equal((await post(app, `/orgs/${acme.id}/users`, boss, { email: 'carol@example.com', display_name: 'Carol', role: 'user' })).status, 303)
  t.ok(tenants.userByEmail('carol@example.com'))
  const foreign = await post(app, `/orgs/${acme.id}/users`, boss, { email: 'eve@globex.test', role: 'user' })
  t.equal(foreign.status, 400)
  t.match(await foreign.text(), /globex\.test is not a domain of acme/)
  t.notOk(tenants.userByEmail('eve@globex.test'))
  const bob = tenants.userByEmail('bob@example.com')!
  t.equal((await post(app, `/orgs/${acme.id}/users/${bob.id}/role`, boss, { role: 'org_admin' })).status, 303)
  t.equal(tenants.userByEmail('bob@example.com')!.role, 'org_admin')
  const self = tenants.userByEmail('boss@example.com')!
  t.equal((await post(app, `/orgs/${acme.id}/users/${self.id}/delete`, boss)).status, 400)
  t.ok(tenants.userByEmail('boss@example.com'), 'no removing oneself')
  const hank = tenants.userByEmail('hank@globex.test')!
  t.equal((await post(app, `/orgs/${acme.id}/users/${hank.id}/delete`, boss)).status, 404)
  t.equal((await post(app, `/orgs/${globex.id}/users/${hank.id}/delete`, boss)).status, 404)
  t.equal((await get(app, `/orgs/${globex.id}/users`, boss)).status, 404)
  t.ok(tenants.userByEmail('hank@globex.test'))
  t.equal((await post(app, `/orgs/${acme.id}/users/${bob.id}/delete`, boss)).status, 303)
  t.notOk(tenants.userByEmail('bob@example.com'))
  const alice = await signIn(app, 'alice@example.com')
  t.equal((await get(app, `/orgs/${acme.id}/users`, alice)).status, 404, 'an end user has no user admin')
})

t.test('statistics per organisation in scope; rules; the audit log', async (t) => {
  const { app, db } = await setup(t)
  const tenants = new Tenants(db)
  const acme = tenants.orgByName('acme')!
  const globex = tenants.orgByName('globex')!
  const boss = await signIn(app, 'boss@example.com')
  const stats = await get(app, '/stats', boss)
  t.equal(stats.status, 200)
  t.match(stats.text, /<th>Inbound<\/th><td class="num">2<\/td><td class="num">0<\/td><td class="num">2<\/td>/, 'acme: two spam messages in, not globex’s')
  t.match(stats.text, /spammer@bad\.test/)
  t.match(stats.text, /<svg/)
  t.equal((await get(app, `/stats?org=${globex.id}`, boss)).status, 404)
  const root = await signIn(app, 'root@moat.test')
  t.match((await get(app, `/stats?org=${globex.id}`, root)).text, /<th>Inbound<\/th><td class="num">1<\/td>/)
  t.equal((await get(app, '/stats', await signIn(app, 'alice@example.com'))).status, 404)

  const rule = { name: 'ACME_FAKE_INVOICE', description: 'invoices with zips', org: 'acme', direction: 'in', action: 'score', score: '3', what: '{"all":[{"subject":"invoice"},{"attachment":"\\\\.zip$"}]}' }
  t.equal((await post(app, '/rules', boss, rule)).status, 303)
  const rules = await get(app, '/rules', boss)
  t.match(rules.text, /ACME_FAKE_INVOICE/)
  t.match(rules.text, /UPS_NOT_FROM_UPS/, 'appliance-wide rules are shown')
  t.equal((await post(app, '/rules', boss, { ...rule, name: 'GLOBAL_ONE', org: '' })).status, 404, 'only the appliance admin adds appliance-wide rules')
  t.equal((await post(app, '/rules', boss, { ...rule, name: 'THEIRS', org: 'globex' })).status, 404)
  const bad = await post(app, '/rules', boss, { ...rule, name: 'BROKEN', what: '{"subjekt":"x"}' })
  t.equal(bad.status, 400)
  const ups = db.prepare(`SELECT id FROM rules WHERE name = 'UPS_NOT_FROM_UPS'`).get() as { id: number }
  t.equal((await post(app, `/rules/${ups.id}/enabled`, boss, { value: 'off' })).status, 404)
  t.equal((await post(app, `/rules/${ups.id}/enabled`, root, { value: 'off' })).status, 303)
  t.same(db.prepare(`SELECT enabled FROM rules WHERE id = ?`).get(ups.id), { enabled: 0 })

  await post(app, `/orgs/${globex.id}/digests`, root, { value: 'on' })
  const audit = await get(app, '/audit', boss)
  t.match(audit.text, /rule-add/)
  t.notMatch(audit.text, /org-digests/, 'root’s action on globex is not acme’s business')
  t.match((await get(app, '/audit', root)).text, /org-digests[\s\S]*rule-add/)
  t.equal(acme.id > 0, true)
})

t.test('switching into an organisation narrows everything to it until leaving', async (t) => {
  const { app, db } = await setup(t)
  const acme = new Tenants(db).orgByName('acme')!
  const root = await signIn(app, 'root@moat.test')
  t.match((await get(app, '/quarantine', root)).text, /hankmail/)
  t.equal((await post(app, `/orgs/${acme.id}/view`, root)).status, 303)
  const inside = await get(app, '/quarantine', root)
  t.match(inside.text, /Working inside acme/)
  t.match(inside.text, /alicemail/)
  t.notMatch(inside.text, /hankmail/)
  t.notMatch((await get(app, '/orgs', root)).text, /globex/)
  await post(app, '/view/leave', root)
  t.match((await get(app, '/quarantine', root)).text, /hankmail/)
  const boss = await signIn(app, 'boss@example.com')
  t.equal((await post(app, `/orgs/${acme.id}/view`, boss)).status, 404, 'only MSP and appliance admins switch')
})

t.test('system page: services, queues, settings, and a certificate that must match its key', async (t) => {
  const { app, db, dataDir } = await setup(t)
  const root = await signIn(app, 'root@moat.test')
  const page = await get(app, '/status', root)
  t.equal(page.status, 200)
  t.match(page.text, /Deliveries waiting/)
  t.match(page.text, /Disk free/)
  t.equal((await get(app, '/status', await signIn(app, 'boss@example.com'))).status, 404)
  await post(app, '/system/settings', root, {})
  t.same(db.prepare(`SELECT value FROM settings WHERE key = 'require_admin_totp'`).get(), { value: 'false' })

  const dir = t.testdir()
  const make = (name: string) => {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', `/CN=${name}`, '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.crt`)])
    if (r.status !== 0) throw new Error(String(r.stderr))
    return { cert: fs.readFileSync(path.join(dir, `${name}.crt`), 'utf8'), key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8') }
  }
  const a = make('mx.customer.test')
  const b = make('other.test')
  const wrong = await app.request('/system/certificate', multipart(root, { cert: a.cert, key: b.key }))
  t.equal(wrong.status, 400)
  t.match(await wrong.text(), /does not belong to the certificate/)
  t.notOk(fs.existsSync(path.join(dataDir, 'tls/cert.pem')))
  fs.mkdirSync(path.join(dataDir, 'tls'), { recursive: true })
  fs.writeFileSync(path.join(dataDir, 'tls/self-signed'), '')
  const ok = await app.request('/system/certificate', multipart(root, { cert: a.cert, key: a.key }))
  t.equal(ok.status, 200)
  t.match(await ok.text(), /CN=mx\.customer\.test/)
  t.equal(fs.readFileSync(path.join(dataDir, 'tls/cert.pem'), 'utf8'), a.cert)
  t.notOk(fs.existsSync(path.join(dataDir, 'tls/self-signed')), 'the appliance will not replace an admin’s certificate')
})

t.test('backup download and restore upload: the appliance admin only; a bad file is refused', async (t) => {
  const { app, dataDir } = await setup(t)
  const root = await signIn(app, 'root@moat.test')
  const boss = await signIn(app, 'boss@example.com')
  t.equal((await app.request('/system/backup', { headers: { Cookie: boss.cookie } })).status, 404)
  const res = await app.request('/system/backup', { headers: { Cookie: root.cookie } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'application/gzip')
  t.match(res.headers.get('content-disposition'), /^attachment; filename="moat-backup-moat-\d{4}-\d{2}-\d{2}\.tar\.gz"$/)
  const bytes = Buffer.from(await res.arrayBuffer())
  t.equal(Number(res.headers.get('content-length')), bytes.length)
  t.same(bytes.subarray(0, 2), Buffer.from([0x1f, 0x8b]), 'gzip')
  t.notOk(fs.readdirSync(dataDir).some((n) => n.startsWith('.download-') || n.startsWith('.backup-')), 'nothing left behind')
  const upload = (content: Buffer) => {
    const form = new FormData()
    form.set('_csrf', root.csrf)
    form.set('backup', new File([content], 'backup.tar.gz'))
    return app.request('/system/restore', { method: 'POST', headers: { Cookie: root.cookie }, body: form })
  }
  const bad = await upload(Buffer.from('not a backup'))
  t.equal(bad.status, 400)
  t.match(await bad.text(), /Not restored: not a backup archive/)
  t.notOk(fs.existsSync(path.join(dataDir, 'restore-pending')))
  const ok = await upload(bytes)
  t.equal(ok.status, 200)
  t.match(await ok.text(), /is checked and staged\. Restart the services/)
  t.ok(fs.existsSync(path.join(dataDir, 'restore-pending/moat.db')))
  t.match((await get(app, '/status', root)).text, /A restore of the backup of moat from .* is staged/)
})

t.test('surespam stays out of an end user’s quarantine until they choose to see it; the dashboard counts viruses and delivery problems', async (t) => {
  const { app, db, ids } = await setup(t)
  db.prepare(`UPDATE quarantine SET verdict = 'surespam' WHERE id = ?`).run(ids.bobmail.quarantine)
  const bob = await signIn(app, 'bob@example.com')
  t.notMatch((await get(app, '/quarantine', bob)).text, /bobmail/)
  t.equal((await get(app, `/quarantine/${ids.bobmail.quarantine}`, bob)).status, 404)
  t.equal((await post(app, `/quarantine/${ids.bobmail.quarantine}/release`, bob)).status, 404)
  t.match((await get(app, '/account', bob)).text, /Show surespam in my quarantine/)
  t.equal((await post(app, '/account/surespam', bob, { show: 'on' })).status, 200)
  t.match((await get(app, '/quarantine', bob)).text, /bobmail/)
  t.equal((await get(app, `/quarantine/${ids.bobmail.quarantine}`, bob)).status, 200)
  const boss = await signIn(app, 'boss@example.com')
  t.match((await get(app, '/quarantine', boss)).text, /bobmail/, 'admins always see surespam')

  const acme = new Tenants(db).orgByName('acme')!
  db.prepare(`UPDATE quarantine SET reason = 'virus' WHERE id = ?`).run(ids.alicemail.quarantine)
  db.prepare(`INSERT INTO deliveries (org_id, message_id, rcpt, reason, state, created_at, updated_at) VALUES (?, ?, 'alice@example.com', 'clean', 'deferred', ?, ?)`).run(acme.id, ids.alicemail.message, Date.now(), Date.now())
  const root = await signIn(app, 'root@moat.test')
  const row = /<tr data-id="\d+"><td><a href="\/orgs\/\d+">acme<\/a><\/td>(.*?)<\/tr>/.exec((await get(app, '/orgs', root)).text)![1]
  const cells = [...row.matchAll(/<td class="num[^"]*">([^<]*)<\/td>/g)].map((m) => m[1])
  t.same(cells.slice(5, 7), ['1', '1'], 'one virus and one deferred delivery in the last 24 hours')
})

t.test('delivery monitor for one destination domain: the raw attempts give the roll-up’s numbers for that domain alone', async (t) => {
  const { app, db } = await setup(t)
  const { DeliveryMonitor } = require('../../appliance/services/delivery-monitor')
  const m = new DeliveryMonitor(db)
  const now = Date.now()
  const base = { queueId: 'q', direction: 'out', mxHost: 'mx.shared.test', port: 25, tls: true, attempt: 1, recipients: 1, ip: '192.0.2.7' }
  await m.record({ ...base, domain: 'example.net', at: now - 2 * 3_600_000, outcome: 'delivered', code: 250, response: '250 ok', connectMs: 30, totalMs: 400 })
  await m.record({ ...base, domain: 'example.net', at: now - 3_600_000, outcome: 'bounced', code: 554, response: '554 5.7.1 blocked using zen.spamhaus.org', connectMs: 35, totalMs: 300 })
  await m.record({ ...base, domain: 'example.net', at: now, outcome: 'deferred', code: 451, response: '451 greylisted, try again later', connectMs: null, totalMs: 50 })
  // Before any other domain shares the IP, the per-domain figures equal the roll-up's.
  const strip = (rows: { diagnosis: unknown }[]) => rows.map(({ diagnosis, ...r }) => r)
  t.same(strip(m.stats({ domain: 'Example.NET', now })), strip(m.stats({ now })))
  t.same(m.series({ domain: 'example.net', now }).map((r: any) => [r.hour, r.attempts, r.delivered, r.rbl, r.greylisted, r.total_ms_sum]), m.series({ now }).map((r: any) => [r.hour, r.attempts, r.delivered, r.rbl, r.greylisted, r.total_ms_sum]))
  await m.record({ ...base, domain: 'example.org', at: now, outcome: 'delivered', code: 250, response: '250 ok', connectMs: 20, totalMs: 100 })
  const org = m.stats({ domain: 'example.org', now })
  t.match(org, [{ ip: '192.0.2.7', domain: 'example.org', attempts: 1, delivered: 1, rbl: 0, diagnosis: [] }])
  const root = await signIn(app, 'root@moat.test')
  const page = await get(app, '/delivery?domain=example.org', root)
  t.match(page.text, /Delivery monitor for example\.org/)
  t.notMatch(page.text, /OUR side/, 'example.net’s blocklisting is not example.org’s')
  t.match((await get(app, '/delivery', root)).text, /OUR side/)
  t.match((await get(app, '/delivery', root)).text, /href="\/delivery\?domain=example\.net&amp;hours=24"/)
})

t.test('status page: an uploaded release is checked before the root unit gets it; host settings are checked, then requested', async (t) => {
  const { db, dataDir } = await setup(t)
  const keys = path.join(dataDir, 'keys')
  const { key } = makeReleaseKey(keys)
  const other = makeReleaseKey(path.join(dataDir, 'other'))
  const tree = path.join(dataDir, 'tree')
  fs.mkdirSync(path.join(tree, 'bin'), { recursive: true })
  fs.writeFileSync(path.join(tree, 'bin/moat'), '#!/bin/sh\n')
  fs.writeFileSync(path.join(tree, 'package.json'), JSON.stringify({ name: 'moat', version: '9.9.10' }))
  const good = path.join(dataDir, 'good.moat')
  const foreign = path.join(dataDir, 'foreign.moat')
  await packRelease(tree, good, key)
  await packRelease(tree, foreign, other.key)
  const app = createApp({ db, spool: new Spool(path.join(dataDir, 'spool')), version: '9.9.9', clamd: null, dataDir, hostname: 'moat', releaseKeys: keys, hostSettings: true })
  const root = await signIn(app, 'root@moat.test')
  const upload = (file: string) => {
    const form = new FormData()
    form.set('_csrf', root.csrf)
    form.set('release', new File([fs.readFileSync(file)], 'moat.moat'))
    return app.request('/system/update', { method: 'POST', headers: { Cookie: root.cookie }, body: form })
  }
  const bad = await upload(foreign)
  t.equal(bad.status, 400)
  t.match(await bad.text(), /Not applied: the release signature does not match any trusted release key/)
  t.notOk(fs.existsSync(incomingFile(dataDir)), 'nothing handed to the root unit')
  const ok = await upload(good)
  t.equal(ok.status, 200)
  t.match(await ok.text(), /Release 9\.9\.10 is signed and intact; it is being applied/)
  t.ok(fs.existsSync(incomingFile(dataDir)), 'handed to the root unit')
  t.match((await get(app, '/status', root)).text, /An uploaded release is waiting to be applied/)

  const wrong = await post(app, '/system/host', root, { hostname: 'mx1.example.com', net_mode: 'static', address: '192.0.2.10/24', gateway: '192.0.2.1', dns: 'not-an-ip' })
  t.equal(wrong.status, 400)
  t.match(await wrong.text(), /Not changed: DNS server &quot;not-an-ip&quot; is not an IPv4 address/)
  t.notOk(fs.existsSync(requestFile(dataDir)))
  t.equal((await post(app, '/system/host', root, { hostname: 'mx1.example.com', net_mode: 'dhcp' })).status, 200)
  t.same(JSON.parse(fs.readFileSync(requestFile(dataDir), 'utf8')), { hostname: 'mx1.example.com', network: { mode: 'dhcp' } })
  const boss = await signIn(app, 'boss@example.com')
  t.equal((await post(app, '/system/host', boss, { hostname: 'evil', net_mode: 'dhcp' })).status, 404, 'the appliance admin’s only')
})

t.test('every admin action says what it did on the page it returns to; unknown kinds say nothing', async (t) => {
  const { app, db } = await setup(t)
  const acme = new Tenants(db).orgByName('acme')!
  const domain = new Tenants(db).domainByName('example.com')!
  const boss = await signIn(app, 'boss@example.com')
  const follow = async (res: Response) => {
    t.equal(res.status, 303)
    const page = await get(app, res.headers.get('location')!, boss)
    return /<p class="done" role="status" id="done">([^<]*)<\/p>/.exec(page.text)?.[1] ?? ''
  }
  t.match(await follow(await post(app, '/lists', boss, { kind: 'block', pattern: '@evil.test', org: String(acme.id) })), /^Added to the list/)
  const entry = db.prepare(`SELECT id FROM sender_lists`).pluck().get() as number
  t.match(await follow(await post(app, `/lists/${entry}/delete`, boss)), /^Removed from the list/)
  t.match(await follow(await post(app, `/orgs/${acme.id}/domains/${domain.id}/catch-all`, boss, { value: 'on' })), /^Catch-all is on/)
  t.match(await follow(await post(app, `/orgs/${acme.id}/domains/${domain.id}/catch-all`, boss, { value: 'off' })), /^Catch-all is off/)
  t.match(await follow(await post(app, `/orgs/${acme.id}/users`, boss, { email: 'newbie@example.com' })), /^User added/)
  t.match(await follow(await post(app, `/orgs/${acme.id}/digests`, boss, { value: 'on' })), /^Digests changed for \d+ users/)
  t.equal((await get(app, `/orgs/${acme.id}?done=<script>&n=1`, boss)).text.includes('id="done"'), false, 'a crafted kind shows nothing')
})

t.test("users page: an admin sets a user's password and manages aliases, inside the organisation only", async (t) => {
  const { app, db } = await setup(t)
  const tenants = new Tenants(db)
  const acme = tenants.orgByName('acme')!
  const globex = tenants.orgByName('globex')!
  const boss = await signIn(app, 'boss@example.com')
  const bob = tenants.userByEmail('bob@example.com')!
  const hank = tenants.userByEmail('hank@globex.test')!
  const me = tenants.userByEmail('boss@example.com')!
  const fresh = 'a new password for bob, long enough'

  const short = await post(app, `/orgs/${acme.id}/users/${bob.id}/password`, boss, { password: 'short' })
  t.equal(short.status, 400)
  t.match(await short.text(), /password/i, 'a weak password is refused with the reason')
  const set = await post(app, `/orgs/${acme.id}/users/${bob.id}/password`, boss, { password: fresh })
  t.equal(set.headers.get('location'), `/orgs/${acme.id}/users?done=user-password`)
  t.equal((await signIn(app, 'bob@example.com', fresh)).status, 303, 'bob signs in with it')
  t.match(db.prepare(`SELECT detail FROM audit_log WHERE action = 'user-password'`).pluck().get(), 'bob@example.com', 'audited')
  t.equal((await post(app, `/orgs/${acme.id}/users/${hank.id}/password`, boss, { password: fresh })).status, 404, "another organisation's user, under one's own")
  t.equal((await post(app, `/orgs/${globex.id}/users/${hank.id}/password`, boss, { password: fresh })).status, 404, "another organisation's user")
  t.equal((await post(app, `/orgs/${acme.id}/users/${me.id}/password`, boss, { password: fresh })).status, 400, 'not her own: that asks for the current one')

  t.equal((await post(app, `/orgs/${acme.id}/aliases`, boss, { address: 'sales@example.com', target: 'bob@example.com' })).status, 303)
  t.match(tenants.listAliases(), [{ address: 'sales@example.com', target: 'bob@example.com' }])
  t.match((await get(app, `/orgs/${acme.id}/users`, boss)).text, /sales@example\.com<\/td><td>→ bob@example\.com/)
  const cross = await post(app, `/orgs/${acme.id}/aliases`, boss, { address: 'hank2@example.com', target: 'hank@globex.test' })
  t.equal(cross.status, 400)
  t.match(await cross.text(), /is not a user of acme/, 'no alias to another tenant')
  t.equal((await post(app, `/orgs/${acme.id}/aliases`, boss, { address: 'boss@globex.test', target: 'bob@example.com' })).status, 400, "no alias in another tenant's domain")
  t.equal((await post(app, `/orgs/${globex.id}/aliases`, boss, { address: 'x@globex.test', target: 'hank@globex.test' })).status, 404)
  tenants.addAlias('info@globex.test', 'hank@globex.test')
  const theirs = tenants.listAliases().find((a) => a.address === 'info@globex.test')!
  t.equal((await post(app, `/orgs/${acme.id}/aliases/${theirs.id}/delete`, boss)).status, 404, "another tenant's alias by id")
  const ours = tenants.listAliases().find((a) => a.address === 'sales@example.com')!
  t.equal((await post(app, `/orgs/${acme.id}/aliases/${ours.id}/delete`, boss)).status, 303)
  t.same(tenants.listAliases().map((a) => a.address), ['info@globex.test'])
})

t.test('outbound mail in the UI: DKIM, held senders, relay networks per organisation; routes for the appliance admin', async (t) => {
  const { app, db } = await setup(t)
  const tenants = new Tenants(db)
  const acme = tenants.orgByName('acme')!
  const globex = tenants.orgByName('globex')!
  const domain = tenants.domainByName('example.com')!
  const theirDomain = tenants.domainByName('globex.test')!
  const boss = await signIn(app, 'boss@example.com')

  t.match((await get(app, `/orgs/${acme.id}/outbound`, boss)).text, /no key yet/)
  t.equal((await post(app, `/orgs/${acme.id}/outbound/dkim/${domain.id}`, boss, { do: 'make' })).headers.get('location'), `/orgs/${acme.id}/outbound?done=dkim-make`)
  const page = (await get(app, `/orgs/${acme.id}/outbound`, boss)).text
  t.match(page, /moat\d{6}[0-9a-f]{4}\._domainkey\.example\.com\. IN TXT &quot;v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{200,}&quot; &quot;[A-Za-z0-9+/=]{100,}&quot;/, 'the record to publish')
  t.match(page, /Signing: <strong>off<\/strong>/)
  t.equal((await post(app, `/orgs/${acme.id}/outbound/dkim/${domain.id}`, boss, { do: 'enable' })).status, 303)
  t.equal(db.prepare(`SELECT dkim_enabled FROM domains WHERE id = ?`).pluck().get(domain.id), 1, 'signing on')
  t.equal((await post(app, `/orgs/${acme.id}/outbound/dkim/${theirDomain.id}`, boss, { do: 'make' })).status, 404, "another tenant's domain under one's own organisation")
  t.equal((await post(app, `/orgs/${globex.id}/outbound/dkim/${theirDomain.id}`, boss, { do: 'make' })).status, 404, "another tenant's organisation")

  t.equal((await post(app, `/orgs/${acme.id}/outbound/senders`, boss, { address: 'bob@example.com', reason: 'sending a lot' })).status, 303)
  const held = db.prepare(`SELECT id FROM held_senders WHERE address = 'bob@example.com' AND released_at IS NULL`).pluck().get() as number
  t.ok(held, 'bob is held')
  db.prepare(`INSERT INTO held_senders (org_id, address, reason, held_at) VALUES (?, 'hank@globex.test', 'x', ?)`).run(globex.id, Date.now())
  const theirs = db.prepare(`SELECT id FROM held_senders WHERE address = 'hank@globex.test'`).pluck().get() as number
  t.equal((await post(app, `/orgs/${acme.id}/outbound/senders/${theirs}/release`, boss)).status, 404, "another tenant's held sender by id")
  t.match((await post(app, `/orgs/${acme.id}/outbound/senders/${held}/release`, boss)).headers.get('location'), /done=sender-released&n=0$/)

  t.equal((await post(app, `/orgs/${acme.id}/outbound/networks`, boss, { cidr: '0.0.0.0/0' })).status, 404, 'an organisation admin cannot make its organisation a relay')
  const root = await signIn(app, 'root@moat.test')
  t.equal((await post(app, `/orgs/${acme.id}/outbound/networks`, root, { cidr: '192.0.2.10/32', description: 'their Exchange' })).status, 303)
  t.match(db.prepare(`SELECT cidr FROM relay_networks`).pluck().all(), ['192.0.2.10/32'])
  t.equal((await post(app, '/outbound/routes', boss, { domain: '*', host: 'smarthost.example:587' })).status, 404, 'routes are the appliance admin’s')
  t.equal((await post(app, '/outbound/routes', root, { domain: '*', host: 'smarthost.example:587' })).status, 303)
  t.match((await get(app, '/outbound', root)).text, /→ smarthost\.example:587/)
  t.equal((await post(app, '/outbound/routes/delete', root, { domain: '*' })).status, 303)
  t.same(db.prepare(`SELECT count(*) FROM transport_routes`).pluck().get(), 0)
})
