/*
 * The web UI in a real browser (Debian's chromium driven by playwright-core) against the real
 * appliance: mail arrives over SMTP, a user signs in, releases a quarantined message (which
 * then reaches the customer's server), searches the archive; another tenant's user gets 404.
 * Screenshots go to artifacts/screenshots/.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { corpusDir } from '../../appliance/engine/training'
import { message, moat, moatOk, provisionAcme, ROOT, type Sink, smtpSend, startSink, startSmtp, startWeb, until, workDir } from '../helpers/appliance'

const { chromium } = require('playwright-core')

const CHROMIUM = '/usr/bin/chromium'
const PASSWORD = 'browser test password'
const SHOTS = path.join(ROOT, 'artifacts/screenshots')

function spam(): Buffer {
  const dir = path.join(corpusDir(), 'dev', 'spam', 'sa-spam')
  for (const f of fs.readdirSync(dir).sort()) {
    const raw = fs.readFileSync(path.join(dir, f), 'latin1')
    if (!raw.includes('\r') && raw.length < 20000 && /^Subject: .{8,}/m.test(raw)) return Buffer.from(raw.replace(/\n/g, '\r\n'), 'latin1')
  }
  throw new Error('no spam in the corpus')
}

t.test('sign in, release from the quarantine, search the archive, and no peeking at another tenant', { skip: !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true })
  const dir = workDir(t)
  const sink: Sink = await startSink()
  t.teardown(() => sink.close())
  provisionAcme(dir, sink.port)
  moatOk(dir, ['org', 'add', 'globex'])
  moatOk(dir, ['domain', 'add', 'globex.test', '--org', 'globex', '--deliver-to', `127.0.0.1:${sink.port}`])
  moatOk(dir, ['user', 'add', 'hank@globex.test'])
  moatOk(dir, ['user', 'add', 'boss@example.com', '--role', 'org_admin'])
  for (const u of ['alice@example.com', 'hank@globex.test', 'boss@example.com']) t.equal(moat(dir, ['user', 'password', u], `${PASSWORD}\n`).code, 0)

  const smtp = await startSmtp(dir)
  const junk = spam()
  t.equal((await smtpSend(smtp.port, { from: 'promo@spam.test', to: ['alice@example.com'], data: junk })).final.code, 250)
  const memo = message({ From: 'carol@partner.test', To: 'alice@example.com', Subject: 'Quarterly figures for the zeppelin project', Date: new Date().toUTCString() }, 'Alice, the figures are attached as discussed.\n')
  t.equal((await smtpSend(smtp.port, { from: 'carol@partner.test', to: ['alice@example.com'], data: memo })).final.code, 250)
  const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const entry = await until(() => db.prepare(`SELECT q.id, q.verdict, m.subject FROM quarantine q JOIN messages m ON m.id = q.message_id WHERE q.rcpt = 'alice@example.com'`).get() as { id: number; verdict: string; subject: string } | undefined, 20_000, 'the spam quarantined')
  const memoId = (await until(() => db.prepare(`SELECT id FROM messages WHERE subject LIKE 'Quarterly figures%'`).get() as { id: number } | undefined, 20_000, 'the memo archived')).id

  const web = await startWeb(dir)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  const cspErrors: string[] = []
  // Anything that gets past the page's CSP to the network layer, other than the appliance, is
  // recorded and aborted: the test itself must not reach beyond loopback either.
  const escaped: string[] = []
  const context = await browser.newContext()
  await context.route('**/*', (route: { request(): { url(): string }; abort(): Promise<void>; continue(): Promise<void> }) => {
    const url = route.request().url()
    if (url.startsWith(web.url) || url.startsWith('data:')) return route.continue()
    escaped.push(url)
    return route.abort()
  })
  const page = await context.newPage()
  page.on('console', (m: { type(): string; text(): string }) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text())
  })

  await page.goto(`${web.url}/quarantine`)
  t.match(page.url(), /\/login\?next=%2Fquarantine$/, 'signed out: the login page')
  await page.fill('input[name=email]', 'alice@example.com')
  await page.fill('input[name=password]', 'wrong password here')
  await page.click('button[type=submit]')
  t.match(await page.textContent('[role=alert]'), /Wrong e-mail address or password/)
  await page.fill('input[name=password]', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForURL(/\/quarantine$/)
  if (entry.verdict === 'surespam') {
    // Surespam is quarantined quietly: she sees it once she asks to, on her account page.
    t.equal(await page.locator(`#quarantine tr[data-id="${entry.id}"]`).count(), 0, 'surespam stays out of her list at first')
    await page.goto(`${web.url}/account`)
    await page.check('#show-surespam input[name=show]')
    await page.click('#show-surespam button[type=submit]')
    t.match(await page.textContent('[role=status]'), /Surespam is shown in your quarantine/)
    await page.goto(`${web.url}/quarantine`)
  }
  await page.screenshot({ path: path.join(SHOTS, 'quarantine-list.png'), fullPage: true })
  const row = page.locator(`#quarantine tr[data-id="${entry.id}"]`)
  t.equal(await row.count(), 1, 'her quarantined message is listed')
  t.equal(await page.evaluate('typeof window.htmx'), 'object', 'htmx loaded from the appliance itself')

  await row.locator('a').click()
  await page.waitForURL(new RegExp(`/quarantine/${entry.id}$`))
  t.ok((await page.locator('#symbols tbody tr').count()) > 0, 'the symbols behind the verdict')
  await page.screenshot({ path: path.join(SHOTS, 'quarantine-preview.png'), fullPage: true })
  const before = sink.messages.length
  await page.click('button:has-text("Release")')
  await page.waitForURL(/\/quarantine\?done=release&n=1$/)
  t.equal(await page.locator('#done').textContent(), 'Released 1 message.', 'the page says what was done')
  t.equal(await page.locator(`#quarantine tr[data-id="${entry.id}"]`).count(), 0, 'gone from the list')
  const released = (await sink.waitFor(before + 1)).slice(before).find((m) => m.to.includes('alice@example.com'))
  t.ok(released, 'delivered to her server')
  t.match(released!.data.toString(), /^X-Moat-Verdict: \w+; released/m)

  await page.goto(`${web.url}/archive`)
  await page.fill('input[name=q]', 'zeppelin')
  await page.click('button:has-text("Search")')
  await page.waitForURL(/q=zeppelin/)
  t.equal(await page.locator(`#archive tr[data-id="${memoId}"]`).count(), 1, 'found in the archive')
  await page.screenshot({ path: path.join(SHOTS, 'archive-search.png'), fullPage: true })
  await page.click(`#archive tr[data-id="${memoId}"] a`)
  t.match(await page.textContent('pre.body'), /figures are attached/)

  // Phones: the end user's quarantine, preview, release and archive at 390 px (Chromium's
  // mobile emulation), with nothing wider than the screen.
  const again = Buffer.from(junk.toString('latin1').replace(/^Subject: .*$/m, 'Subject: second offer for the phone'), 'latin1')
  t.equal((await smtpSend(smtp.port, { from: 'promo@spam.test', to: ['alice@example.com'], data: again })).final.code, 250)
  const held = await until(() => db.prepare(`SELECT q.id FROM quarantine q JOIN messages m ON m.id = q.message_id WHERE m.subject = 'second offer for the phone'`).get() as { id: number } | undefined, 20_000, 'the second spam quarantined')
  const phoneContext = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
  await phoneContext.route('**/*', (route: { request(): { url(): string }; abort(): Promise<void>; continue(): Promise<void> }) =>
    route.request().url().startsWith(web.url) || route.request().url().startsWith('data:') ? route.continue() : (escaped.push(route.request().url()), route.abort()),
  )
  await phoneContext.addCookies(await context.cookies())
  const phone = await phoneContext.newPage()
  for (const [url, shot] of [['/quarantine', 'phone-quarantine'], [`/quarantine/${held.id}`, 'phone-preview'], ['/archive?q=zeppelin', 'phone-archive'], [`/archive/${memoId}`, 'phone-message']]) {
    await phone.goto(`${web.url}${url}`)
    const width = (await phone.evaluate('document.documentElement.scrollWidth')) as number
    t.ok(width <= 390, `${url} fits a 390 px phone (${width} px wide)`)
    await phone.screenshot({ path: path.join(SHOTS, `${shot}.png`), fullPage: true })
  }
  await phone.goto(`${web.url}/quarantine/${held.id}`)
  await phone.tap('button:has-text("Release")')
  await phone.waitForURL(/done=release&n=1$/)
  t.equal(await phone.locator('#done').textContent(), 'Released 1 message.', 'released from the phone')

  // Another tenant's user, in a fresh browser context.
  const other = await (await browser.newContext()).newPage()
  await other.goto(`${web.url}/login`)
  await other.fill('input[name=email]', 'hank@globex.test')
  await other.fill('input[name=password]', PASSWORD)
  await other.click('button[type=submit]')
  await other.waitForURL(/:\d+\/$/)
  await other.goto(`${web.url}/quarantine`)
  t.equal(await other.locator('#quarantine tbody tr').count(), 0, 'an empty quarantine of his own')
  for (const url of [`/quarantine/${entry.id}`, `/archive/${memoId}`, `/archive/${memoId}/eml`]) {
    const res = await other.goto(`${web.url}${url}`)
    t.equal(res.status(), 404, `${url} is not his`)
  }
  await other.goto(`${web.url}/archive?q=zeppelin`)
  t.equal(await other.locator('#archive tbody tr').count(), 0, "alice's mail is not in his search")
  await other.screenshot({ path: path.join(SHOTS, 'other-tenant.png'), fullPage: true })
  // The organisation admin imports users from a CSV file and watches the progress bar.
  const csvFile = path.join(dir, 'users.csv')
  fs.writeFileSync(csvFile, `email,display_name\n${Array.from({ length: 3000 }, (_, i) => `staff${i}@example.com,Staff ${i}`).join('\n')}\nintruder@globex.test,Not ours\n`)
  const admin = await (await browser.newContext()).newPage()
  await admin.goto(`${web.url}/login`)
  await admin.fill('input[name=email]', 'boss@example.com')
  await admin.fill('input[name=password]', PASSWORD)
  await admin.click('button[type=submit]')
  await admin.waitForURL(/:\d+\/$/)
  await admin.click('a:has-text("Organisations")')
  await admin.setInputFiles('input[type=file]', csvFile)
  await admin.click('button:has-text("Import CSV")')
  await admin.waitForSelector('#import-status:has-text("Done")', { timeout: 30_000 })
  t.match(await admin.textContent('#import-status'), /Done: 3000 users created, 0 existed already, 1 rows with errors/)
  t.equal(await admin.getAttribute('progress', 'value'), '3001', 'the bar is full')
  await admin.screenshot({ path: path.join(SHOTS, 'csv-import.png'), fullPage: true })
  t.equal((db.prepare(`SELECT count(*) AS n FROM users WHERE email LIKE 'staff%@example.com'`).get() as { n: number }).n, 3000)

  // The only CSP refusals are the spam's remote images inside the preview frame: blocked, as
  // they must be (a loaded image tells the spammer the address is read).
  t.ok(cspErrors.some((e) => /Loading the image 'http:\/\/(?!127\.0\.0\.1)/.test(e)), 'remote images in the preview were blocked')
  t.same(cspErrors.filter((e) => !/Loading the image/.test(e)), [], 'no other CSP violation: our own pages need no inline script or style')
  t.same(escaped, [], 'nothing but the appliance was even asked for')
})
