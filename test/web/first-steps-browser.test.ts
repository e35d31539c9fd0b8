/*
 * What a new admin meets first, in Chromium against the real web app: the login page says how
 * the first admin is made while there is none (and stops saying it after); every page has a
 * favicon; the second-factor page shows its key as a QR code that decodes, with the zxing
 * reader the engine uses, to exactly the otpauth link written under it.
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
  await page.waitForURL(/\/quarantine/)
  await page.goto(`${web.url}/account/totp`)
  const uri = (await page.textContent('p.muted code'))!.trim()
  t.match(uri, /^otpauth:\/\/totp\/.*secret=[A-Z2-7]{32}/)
  const png = await page.locator('#totp-qr svg').screenshot()
  t.same(await qrCodeTexts([{ mimeType: 'image/png', size: png.length, content: png }]), [uri], 'the QR code holds the same otpauth link')
  await page.screenshot({ path: path.join(SHOTS, 'totp-qr.png'), fullPage: true })
  t.same(cspErrors, [], 'nothing refused by the CSP')
})
