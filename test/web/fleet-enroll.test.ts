/*
 * An appliance enrolls into an MSP's fleet console from its Status page: a real console
 * (`moat web` over HTTPS with its own certificate) on loopback, the appliance's app signed in
 * as its admin. Refusals (a wrong token, a plain-HTTP URL) say why and enroll nothing.
 */
import t from 'tap'
import { moatOk, startWeb, workDir } from '../helpers/appliance'
import { openDatabase } from '../../appliance/db/database'
import { Accounts } from '../../appliance/services/accounts'
import { Spool } from '../../appliance/services/spool'
import { createApp } from '../../web/app'
import { PASSWORD, post, setup, signIn } from '../helpers/web'

t.test('Status page: enroll this appliance into a fleet console', async (t) => {
  const consoleDir = workDir(t)
  moatOk(consoleDir, ['org', 'add', 'customer-7'])
  const console_ = await startWeb(consoleDir, { MOAT_WEB_TLS: '1' })
  t.teardown(() => console_.stop())
  const token = () => moatOk(consoleDir, ['fleet', 'token', 'create', '--org', 'customer-7', '--uses', '1']).trim().split('\n').at(-1)!
  const consoleHosts = () => JSON.parse(moatOk(consoleDir, ['fleet', 'hosts', '--json'])) as { name: string; kind: string; org: string }[]

  const { app } = await setup(t)
  const root = await signIn(app, 'root@moat.test')
  const status = async () => (await (await app.request('/status', { headers: { Cookie: root.cookie } })).text())
  t.match(await status(), /Not enrolled/)

  const wrong = await post(app, '/system/agent', root, { console: console_.url, token: 'moat_enroll_not-a-token' })
  t.equal(wrong.status, 400)
  t.match(await wrong.text(), /the console refused the enrollment \(403\)/)
  const plain = await post(app, '/system/agent', root, { console: console_.url.replace('https:', 'http:'), token: token() })
  t.equal(plain.status, 400)
  t.match(await plain.text(), /must start with https/)
  t.same(consoleHosts(), [], 'nothing enrolled by either')

  const boss = await signIn(app, 'boss@example.com')
  t.not((await post(app, '/system/agent', boss, { console: console_.url, token: token() })).status, 200, 'an organisation admin cannot enroll the appliance')

  const ok = await post(app, '/system/agent', root, { console: console_.url, token: token() })
  t.equal(ok.status, 200)
  t.match(await ok.text(), /Enrolled as host \d+/)
  t.match(await status(), new RegExp(`Enrolled as host \\d+ of ${console_.url.replace(/[.]/g, '\\.')} \\(console key sha256`))
  t.match(consoleHosts(), [{ kind: 'appliance', org: 'customer-7' }], 'the console has it, as an appliance of that customer')
})

t.test('setup wizard: enroll the new appliance into the MSP console on first start', async (t) => {
  const consoleDir = workDir(t)
  moatOk(consoleDir, ['org', 'add', 'customer-9'])
  const console_ = await startWeb(consoleDir, { MOAT_WEB_TLS: '1' })
  t.teardown(() => console_.stop())
  const token = moatOk(consoleDir, ['fleet', 'token', 'create', '--org', 'customer-9']).trim().split('\n').at(-1)!

  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const setupToken = new Accounts(db).setupToken()!
  const app = createApp({ db, spool: new Spool(`${dir}/spool`), version: '1.2.3', clamd: null, dataDir: dir, hostname: 'mx9.customer.example' })
  t.match(await (await app.request(`/setup?token=${setupToken}`)).text(), /MSP fleet console \(optional\)/)
  const form = (extra: Record<string, string>) => ({ method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ email: 'admin@moat.test', password: PASSWORD, token: setupToken, ...extra }).toString() })
  const done = await app.request('/setup', form({ console: console_.url, console_token: token }))
  t.equal(done.status, 200)
  t.match(await done.text(), /Enrolled in the fleet console .* as host \d+/)
  t.match(JSON.parse(moatOk(consoleDir, ['fleet', 'hosts', '--json'])), [{ name: 'mx9.customer.example', kind: 'appliance', org: 'customer-9', version: '1.2.3' }])
})

t.test('setup wizard: a console that refuses does not stop the set-up', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const setupToken = new Accounts(db).setupToken()!
  const app = createApp({ db, spool: new Spool(`${dir}/spool`), version: '1', clamd: null, dataDir: dir })
  const r = await app.request('/setup', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ email: 'admin@moat.test', password: PASSWORD, token: setupToken, console: 'http://console.example', console_token: 'x' }).toString() })
  t.equal(r.status, 200)
  t.match(await r.text(), /did not work \(the console URL must start with https:\/\/\); the appliance is set up, enroll it from its Status page/)
  t.ok(new Accounts(db).hasAdmin(), 'the admin exists')
})
