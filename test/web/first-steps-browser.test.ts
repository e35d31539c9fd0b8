/*
 * What a new admin meets first, in Chromium against the real web app: the login page says how
 * the first admin is made while there is none (and stops saying it after); every page has a
 * favicon; the second-factor page shows its key as a QR code that decodes, with the zxing
 * reader the engine uses, to exactly the otpauth link written under it; an organisation admin
 * adds an alias and sets a user's password on the users page, and each action says what it did.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { qrCodeTexts } from '../../appliance/engine/qr-codes'
import { moat, moatOk, provisionAcme, ROOT, startWeb, workDir } from '../helpers/appliance'

const { chromium } = require('playwright-core')

const CHROMIUM = '/usr/bin/chromium'
const PASSWORD = 'first steps password'
const SHOTS = path.join(ROOT, 'artifacts/screenshots')

t.test('first admin hint, favicon, TOTP as a QR code', { skip: !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true })
  const dir = workDir(t)
  provisionAcme(dir, 2525)
  t.equal(moat(dir, ['user', 'password', 'alice@example.com'], `${PASSWORD}\n`).code, 0)
  moatOk(dir, ['user', 'add', 'boss@example.com', '--role', 'org_admin'])
  moatOk(dir, ['user', 'add', 'bob@example.com'])
  t.equal(moat(dir, ['user', 'password', 'boss@example.com'], `${PASSWORD}\n`).code, 0)
  const web = await startWeb(dir)
  t.teardown(() => web.stop())
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const cspErrors: string[] = []
  page.on('console', (m: { type(): string; text(): string }) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text())
  })

  await page.goto(`${web.url}/login`)
  t.match(await page.textContent('#first-admin'), /No administrator exists yet.*\/setup\?token=.*moat admin create/s, 'no admin yet: the login page says how to make one')
  await page.screenshot({ path: path.join(SHOTS, 'login-first-admin.png') })
  const icon = await page.getAttribute('link[rel=icon]', 'href')
  const favicon = await fetch(`${web.url}${icon}`)
  t.equal(favicon.headers.get('content-type'), 'image/svg+xml')
  t.match(await favicon.text(), /^<svg/, 'the favicon is served')
  const ico = await fetch(`${web.url}/favicon.ico`, { redirect: 'manual' })
  t.equal(ico.headers.get('location'), '/static/favicon.svg', '/favicon.ico leads to it')

  moatOk(dir, ['admin', 'create', '--email', 'root@moat.test', '--password', 'a long admin password here'])
  await page.goto(`${web.url}/login`)
  t.equal(await page.locator('#first-admin').count(), 0, 'once an admin exists, the hint is gone')

  await page.fill('input[name=email]', 'alice@example.com')
  await page.fill('input[name=password]', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForURL(/:\d+\/$/)
  await page.goto(`${web.url}/account/totp`)
  const uri = (await page.textContent('p.muted code'))!.trim()
  t.match(uri, /^otpauth:\/\/totp\/.*secret=[A-Z2-7]{32}/)
  const png = await page.locator('#totp-qr svg').screenshot()
  t.same(await qrCodeTexts([{ mimeType: 'image/png', size: png.length, content: png }]), [uri], 'the QR code holds the same otpauth link')
  await page.screenshot({ path: path.join(SHOTS, 'totp-qr.png'), fullPage: true })

  // The organisation admin: aliases and a user's password, each action confirmed on the page.
  const admin = await browser.newPage()
  await admin.goto(`${web.url}/login`)
  await admin.fill('input[name=email]', 'boss@example.com')
  await admin.fill('input[name=password]', PASSWORD)
  await admin.click('button[type=submit]')
  await admin.waitForURL(/:\d+\/$/)
  const acme = (JSON.parse(moatOk(dir, ['org', 'list', '--json'])) as { id: number; name: string }[]).find((o) => o.name === 'acme')!
  await admin.goto(`${web.url}/orgs/${acme.id}/users`)
  await admin.fill('input[name=address]', 'sales@example.com')
  await admin.fill('input[name=target]', 'bob@example.com')
  await admin.click('button:has-text("Add alias")')
  t.match(await admin.textContent('#done'), /Alias added/)
  t.match(await admin.textContent('#aliases'), /sales@example\.com.*bob@example\.com/s)
  await admin.fill('input[aria-label="new password for bob@example.com"]', 'bob gets a long new password')
  await admin.click('tr:has-text("bob@example.com") button:has-text("Set password")')
  t.match(await admin.textContent('#done'), /Password set/)
  await admin.screenshot({ path: path.join(SHOTS, 'users-aliases.png'), fullPage: true })
  await admin.goto(`${web.url}/orgs/${acme.id}`)
  await admin.click('a:has-text("outbound mail")')
  await admin.click('button:has-text("Make a key")')
  t.match(await admin.textContent('#done'), /DKIM key made/)
  t.match(await admin.textContent('#dkim'), /_domainkey\.example\.com\. IN TXT "v=DKIM1; k=rsa; p=/, 'the DNS record to publish')
  await admin.screenshot({ path: path.join(SHOTS, 'outbound-dkim.png'), fullPage: true })
  t.same(cspErrors, [], 'nothing refused by the CSP')
})
