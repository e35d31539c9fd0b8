/*
 * An appliance enrolls into an MSP's fleet console from its Status page: a real console
 * (`moat web` over HTTPS with its own certificate) on loopback, the appliance's app signed in
 * as its admin. Refusals (a wrong token, a plain-HTTP URL) say why and enroll nothing.
 */
import t from 'tap'
import { moatOk, startWeb, workDir } from '../helpers/appliance'
import { post, setup, signIn } from '../helpers/web'

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
