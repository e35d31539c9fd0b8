/*
 * The web app's usual test tenancy and sign-in through the real forms: acme (alice, bob, the
 * organisation admin boss) and globex (hank), root as appliance admin with TOTP, and one
 * quarantined message per user.
 */
import { openDatabase } from '../../appliance/db/database'
import { GroupCommitter } from '../../appliance/db/group-commit'
import { Accounts } from '../../appliance/services/accounts'
import { MailStore } from '../../appliance/services/mail-store'
import { RawStore } from '../../appliance/services/raw-store'
import { RelayControl } from '../../appliance/services/relay'
import { Spool } from '../../appliance/services/spool'
import { Tenants } from '../../appliance/services/tenants'
import { codeAt, newSecret, stepOf } from '../../appliance/services/totp'
import { createApp } from '../../web/app'

export const PASSWORD = 'a long enough password'
export const ROOT_TOTP = newSecret()

export async function setup(t: { testdir(): string; teardown(fn: () => unknown): void }) {
  const dir = t.testdir()
  const dataDir = dir
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const spool = new Spool(`${dir}/spool`)
  const tenants = new Tenants(db)
  tenants.addOrg('acme')
  tenants.addOrg('globex')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:2600' })
  tenants.addDomain('globex.test', { org: 'globex', deliverTo: '127.0.0.1:2600' })
  const alice = tenants.addUser('alice@example.com')
  const bob = tenants.addUser('bob@example.com')
  tenants.addUser('boss@example.com', { role: 'org_admin' })
  const hank = tenants.addUser('hank@globex.test')
  const relay = new RelayControl(db)
  for (const u of ['alice@example.com', 'bob@example.com', 'boss@example.com', 'hank@globex.test']) await relay.setPassword(u, PASSWORD)
  await new Accounts(db).createAdmin('root@moat.test', PASSWORD)
  // Admins must have a second factor (the appliance's policy): root has one, from a code of
  // half a minute ago, so the sign-in below can use the current one.
  const rootLogin = await new Accounts(db).login('root@moat.test', PASSWORD, '127.0.0.1')
  if (!rootLogin.ok || !new Accounts(db).enableTotp(rootLogin.session.principal, ROOT_TOTP, codeAt(ROOT_TOTP, stepOf(Date.now()) - 1))) throw new Error('root TOTP')
  const store = new MailStore(db, new RawStore(db, spool), new GroupCommitter(db))
  const ids: Record<string, { message: number; quarantine: number }> = {}
  const put = async (name: string, orgId: number, rcpt: string, userId: number) => {
    const raw = Buffer.from(`From: spammer@bad.test\r\nTo: ${rcpt}\r\nSubject: ${name} cheap pills\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p><b>buy</b> now ${name}<img src="http://tracker.test/pixel.png"></p>\r\n`)
    const r = await store.accept({
      queueId: name, direction: 'in', raw, receivedAt: Date.now(), clientIp: '192.0.2.1', helo: 'bad.test', mailFrom: 'spammer@bad.test',
      fromHeader: 'spammer@bad.test', subject: `${name} cheap pills`, messageIdHeader: null, bodyText: `buy now ${name}`,
      parts: [{ orgId, verdict: 'spam', score: 7.5, symbols: [{ name: 'CLASSIFIER_95', weight: 6 }, { name: 'URL_IP_HOST', weight: 1.5 }], rcpts: [{ address: rcpt, userId, action: 'quarantine' }] }],
    })
    ids[name] = { message: r.messageIds[0], quarantine: r.quarantineIds[0] }
  }
  await put('alicemail', alice.org_id, 'alice@example.com', alice.id)
  await put('bobmail', bob.org_id, 'bob@example.com', bob.id)
  await put('hankmail', hank.org_id, 'hank@globex.test', hank.id)
  const app = createApp({ db, spool, version: '9.9.9', clamd: null, dataDir })
  return { db, app, ids, dataDir }
}

export type App = Awaited<ReturnType<typeof setup>>['app']

/** GET the login form for its cookie, then POST it. */
export async function postLogin(app: App, email: string, password: string): Promise<Response> {
  const form = await app.request('/login')
  const loginCookie = /moat_login=([^;]+)/.exec(form.headers.get('set-cookie') ?? '')![1]
  const token = /name="_login" value="([^"]+)"/.exec(await form.text())![1]
  return app.request('/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `moat_login=${loginCookie}` },
    body: new URLSearchParams({ _login: token, email, password, next: '/quarantine' }).toString(),
  })
}

/** Signs in through the real form (and root's TOTP step); returns the session cookie and its CSRF token. */
export async function signIn(app: App, email: string, password = PASSWORD): Promise<{ status: number; cookie: string; csrf: string }> {
  let res = await postLogin(app, email, password)
  const session = /moat_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? ''
  if (res.headers.get('location')?.startsWith('/login/totp')) {
    const form = await (await app.request('/login/totp', { headers: { Cookie: `moat_session=${session}` } })).text()
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form)![1]
    res = await app.request('/login/totp', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `moat_session=${session}` },
      body: new URLSearchParams({ _csrf: csrf, code: codeAt(ROOT_TOTP, stepOf(Date.now())), next: '/quarantine' }).toString(),
    })
  }
  let csrf = ''
  if (session) {
    const page = await app.request('/quarantine', { headers: { Cookie: `moat_session=${session}` } })
    csrf = /"X-CSRF-Token":"([^"]+)"/.exec((await page.text()).replace(/&quot;/g, '"'))?.[1] ?? ''
  }
  return { status: res.status, cookie: `moat_session=${session}`, csrf }
}

export function post(app: App, path: string, who: { cookie: string; csrf?: string }, fields: Record<string, string> = {}) {
  return app.request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: who.cookie },
    body: new URLSearchParams(who.csrf ? { _csrf: who.csrf, ...fields } : fields).toString(),
  })
}

