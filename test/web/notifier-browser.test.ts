/*
 * The desktop notifier (PWA under /app/) in Chromium against the running web app: installable
 * (Chromium's own installability check), its service worker registered, connected by sign-in
 * and password (a token of its own), notification permission granted, and a notification
 * delivered when it polls. Web Push from the appliance's side: a subscription with a loopback
 * push service that records what the appliance sends, decrypted with the browser's keys; the
 * payload then delivered to the real service worker (DevTools protocol), which shows it.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import type http from 'node:http'
import https from 'node:https'
import path from 'node:path'
import { serve } from '@hono/node-server'
import t from 'tap'
import { PushNotifier } from '../../appliance/notifier/push'
import { Spool } from '../../appliance/services/spool'
import { createApp } from '../../web/app'
import { ROOT } from '../helpers/appliance'
import { PASSWORD, setup } from '../helpers/web'

const { chromium } = require('playwright-core')
const ece = require('http_ece')

const CHROMIUM = '/usr/bin/chromium'
const SHOTS = path.join(ROOT, 'artifacts/screenshots')
const loopback = (url: string) => /^https:\/\/127\.0\.0\.1:\d+\//.test(url)

t.test('the notifier: installable, connected, and it notifies', { skip: !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true })
  const { db, dataDir } = await setup(t)
  const app = createApp({ db, spool: new Spool(`${dataDir}/spool`), version: '9.9.9', clamd: null, dataDir, pushEndpointAllowed: loopback })
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  await new Promise((r) => server.once('listening', r))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`

  // A profile of its own, not an incognito context: Chromium installs no app from incognito.
  const context = await chromium.launchPersistentContext(t.testdir() + '/profile', { executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => context.close())
  await context.grantPermissions(['notifications'], { origin: base })
  const escaped: string[] = []
  await context.route('**/*', (route: { request(): { url(): string }; abort(): Promise<void>; continue(): Promise<void> }) =>
    route.request().url().startsWith(base) || route.request().url().startsWith('data:') ? route.continue() : (escaped.push(route.request().url()), route.abort()),
  )
  const page = await context.newPage()
  // page.waitForFunction evaluates its predicate with eval, which the app's CSP forbids.
  const waitFor = async (expression: string) => {
    for (const end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (await page.evaluate(expression)) return
    throw new Error(`timed out waiting for ${expression}`)
  }

  await page.goto(`${base}/app/`)
  t.ok(await page.locator('#connect').isVisible(), 'not connected yet: it offers to connect')
  const cdp = await context.newCDPSession(page)
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors')
  t.same(installabilityErrors, [], 'Chromium finds it installable (manifest, icon, service worker)')
  const manifest = await (await fetch(`${base}/app/manifest.webmanifest`)).json()
  t.match(manifest, { start_url: '/app/', scope: '/app/', display: 'standalone' })
  t.match(await page.content(), /<link rel="manifest" href="\/app\/manifest\.webmanifest">/, 'linked from /app/')

  await page.click('a:has-text("Sign in and connect")')
  await page.waitForURL(/\/login/)
  await page.fill('input[name=email]', 'alice@example.com')
  await page.fill('input[name=password]', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForURL(/\/app\/connect$/)
  await page.fill('input[name=password]', 'not her password')
  await page.click('form.login button')
  t.match(await page.locator('[role=alert]').textContent(), /password is wrong/, 'a wrong password connects nothing')
  await page.fill('input[name=password]', PASSWORD)
  await page.click('form.login button')
  await page.waitForURL(`${base}/app/`)
  await page.waitForSelector('body[data-ready=yes]')
  const token = await page.evaluate('localStorage.getItem("moat.token")')
  t.match(token, /^moat_/, 'the app holds a token of its own')
  t.ok(db.prepare(`SELECT 1 FROM api_tokens WHERE name = 'Desktop notifier' AND revoked_at IS NULL`).get(), 'listed with the account’s tokens')

  const worker = await page.evaluate('navigator.serviceWorker.ready.then((r) => r.active.scriptURL)')
  t.equal(worker, `${base}/app/sw.js`, 'the service worker runs')
  t.equal(await page.locator('#counts').textContent(), '1 new spam, 0 surespam', "her quarantine's new spam")
  const shown = async () => (await page.evaluate('navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => n.map((x) => x.title))')) as string[]
  t.same(await shown(), ['1 new spam, 0 surespam'], 'polling: a notification was delivered')
  t.match(await page.locator('#version').textContent(), /9\.9\.9/, 'About shows the version')

  await page.fill('#q', 'cheap')
  await page.click('#search button')
  await page.waitForSelector('#hits li')
  t.match(await page.locator('#hits').textContent(), /alicemail cheap pills/, 'the archive search finds her mail')
  t.notMatch(await page.locator('#hits').textContent(), /bobmail|hankmail/, "and no one else's")
  await page.screenshot({ path: path.join(SHOTS, 'notifier.png'), fullPage: true })

  // Web Push: Chromium here cannot reach a vendor's push service, so the app says so and polls.
  await page.selectOption('#mode', 'push')
  await page.click('#settings button[type=submit]')
  await waitFor('document.querySelector("#settings-status").textContent.length > 0')
  t.match(await page.locator('#settings-status').textContent(), /Push is not available here.*checking every 60 minutes/, 'falls back to polling')

  // The appliance's side of push, with a push service on loopback that records what it gets.
  const got: { headers: http.IncomingHttpHeaders; body: Buffer }[] = []
  let answer = 201
  const dir = t.testdir()
  spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/push.key`, '-out', `${dir}/push.crt`, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  const pushService = https.createServer({ key: fs.readFileSync(`${dir}/push.key`), cert: fs.readFileSync(`${dir}/push.crt`) }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) })
      res.writeHead(answer).end()
    })
  })
  await new Promise<void>((r) => pushService.listen(0, '127.0.0.1', r))
  t.teardown(() => pushService.close())
  const browserKeys = crypto.createECDH('prime256v1')
  browserKeys.generateKeys()
  const authSecret = crypto.randomBytes(16).toString('base64url')
  const endpoint = `https://127.0.0.1:${(pushService.address() as { port: number }).port}/push/abc`
  const subscribe = (body: unknown, bearer = token) =>
    fetch(`${base}/api/v1/push/subscriptions`, { method: 'POST', headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
  const subscription = { endpoint, keys: { p256dh: browserKeys.getPublicKey('base64url'), auth: authSecret } }
  t.equal((await subscribe({ subscription: { ...subscription, endpoint: 'http://10.1.2.3/internal' }, interval_minutes: 60 })).status, 400, 'no endpoint on the customer’s network')
  t.equal((await subscribe({ subscription, interval_minutes: 60 })).status, 201)
  const key = (await (await fetch(`${base}/api/v1/push/key`, { headers: { Authorization: `Bearer ${token}` } })).json()) as { public_key: string }
  const vapid = db.prepare(`SELECT value FROM settings WHERE key = 'vapid_public_key'`).get() as { value: string }
  t.equal(key.public_key, vapid.value, 'the VAPID key made for this install')

  const push = new PushNotifier(db, { endpointAllowed: loopback, agent: new https.Agent({ ca: fs.readFileSync(`${dir}/push.crt`) }) })
  const later = Date.now() + 61 * 60_000
  db.prepare(`UPDATE quarantine SET created_at = ? WHERE rcpt = 'alice@example.com'`).run(later - 60_000)
  t.same(await push.run({ subject: 'mailto:postmaster@moat.test', now: later }), { sent: 1, gone: 0, failed: 0 })
  t.equal(got.length, 1)
  t.match(got[0].headers, { 'content-encoding': 'aes128gcm', ttl: '3600' })
  t.match(got[0].headers.authorization, new RegExp(`^vapid t=[\\w-]+\\.[\\w-]+\\.[\\w-]+, k=${key.public_key}$`), 'signed with the appliance’s VAPID key')
  const payload = JSON.parse(ece.decrypt(got[0].body, { version: 'aes128gcm', privateKey: browserKeys, authSecret }).toString('utf8'))
  t.match(payload, { title: '1 new spam, 0 surespam', url: '/quarantine' }, 'only counts travel, encrypted for that browser')
  t.same(await push.run({ subject: 'mailto:postmaster@moat.test', now: later + 60_000 }), { sent: 0, gone: 0, failed: 0 }, 'not again before the interval')

  // What the push service would hand the browser: delivered to the real service worker.
  const registrationId = await new Promise<string>((resolve) => {
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string }[] }) => {
      const r = e.registrations.find((x) => x.scopeURL === `${base}/app/`)
      if (r) resolve(r.registrationId)
    })
    cdp.send('ServiceWorker.enable')
  })
  // The polled notification stays: the pushed one shares its tag and replaces it, so the user sees one
  // notification with the newest counts. (Closing it first raced: Chromium names a tagged notification
  // after its tag, and the old one's late close took the new one with it.)
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: base, registrationId, data: JSON.stringify({ ...payload, title: '2 new spam, 1 surespam' }) })
  await waitFor('navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((n) => n.some((x) => x.title.startsWith("2 new")))')
  t.same(await shown(), ['2 new spam, 1 surespam'], 'the pushed notification is shown, in place of the polled one')

  answer = 410
  db.prepare(`UPDATE quarantine SET created_at = ? WHERE rcpt = 'alice@example.com'`).run(later + 2 * 3_600_000)
  t.same(await push.run({ subject: 'mailto:postmaster@moat.test', now: later + 3 * 3_600_000 }), { sent: 0, gone: 1, failed: 0 })
  t.notOk(db.prepare(`SELECT 1 FROM push_subscriptions`).get(), 'a subscription the push service says is gone is dropped')
  t.same(escaped, [], 'nothing left loopback')
})
