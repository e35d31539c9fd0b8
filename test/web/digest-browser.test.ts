/*
 * The quarantine digest as people get it: composed by the digest job, rendered in Chromium
 * (screenshot in artifacts/screenshots/digest.png), grouped by day with the newest first,
 * encoded subjects decoded; then its links against the running web app: each opens a
 * confirmation page, only its button acts (Block sender lists and deletes, Allow sender lists
 * and releases), each link works once, and the one-click unsubscribe turns the digest off.
 */
import fs from 'node:fs'
import path from 'node:path'
import { serve } from '@hono/node-server'
import t from 'tap'
import { parseMessage } from '../../appliance/engine/message'
import { Digests } from '../../appliance/services/digests'
import { SenderLists } from '../../appliance/services/sender-lists'
import { setup } from '../helpers/web'
import { ROOT } from '../helpers/appliance'
import { MailStore } from '../../appliance/services/mail-store'
import { RawStore } from '../../appliance/services/raw-store'
import { Spool } from '../../appliance/services/spool'
import { GroupCommitter } from '../../appliance/db/group-commit'

const { chromium } = require('playwright-core')

const CHROMIUM = '/usr/bin/chromium'
const SHOTS = path.join(ROOT, 'artifacts/screenshots')
const DAY = 86_400_000

t.test('the digest in a browser, and what its links do', { skip: !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true })
  const { db, app, dataDir } = await setup(t)
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  await new Promise((r) => server.once('listening', r))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`

  const alice = db.prepare(`SELECT id, org_id FROM users WHERE email = 'alice@example.com'`).get() as { id: number; org_id: number }
  const store = new MailStore(db, new RawStore(db, new Spool(`${dataDir}/spool`)), new GroupCommitter(db))
  const now = Date.UTC(2026, 11, 7, 9)
  const held = async (from: string, subject: string, score: number, at: number) =>
    (await store.accept({
      queueId: subject, direction: 'in', raw: Buffer.from(`From: ${from}\r\nSubject: ${subject}\r\n\r\nx\r\n`), receivedAt: at, clientIp: null, helo: null,
      mailFrom: 'bounce@bulk.test', fromHeader: from, subject, messageIdHeader: null, bodyText: 'x',
      parts: [{ orgId: alice.org_id, verdict: score >= 10 ? 'surespam' : 'spam', score, symbols: [], rcpts: [{ address: 'alice@example.com', userId: alice.id, action: 'quarantine' }] }],
    })).quarantineIds[0]
  // The fixture's own entry for alice is from "now"; these are older, over two days.
  db.prepare(`UPDATE quarantine SET created_at = ? WHERE rcpt = 'alice@example.com'`).run(now - 2 * 3_600_000)
  const yesterday = await held('=?UTF-8?B?QsO8cm8gTcO8bGxlcg==?= <offers@promo.test>', '=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_dem_B=C3=BCro?=', 6.2, now - DAY + 3_600_000)
  const today = await held('Crypto Wins <win@lottery.test>', 'You won 5 BTC', 8.4, now - 3_600_000)
  new Digests(db).setPreferences(alice.id, { enabled: true, frequency: 'daily', includeSurespam: false })
  t.same(await new Digests(db).run(store, { publicUrl: base, hostname: 'moat.example.com', now }), { sent: 1, entries: 3 })

  const raw = (db.prepare(`SELECT r.data FROM raw_messages r JOIN messages m ON m.raw_id = r.id WHERE m.queue_id LIKE 'digest-%'`).get() as { data: Buffer }).data
  const head = raw.toString('latin1').split('\r\n\r\n')[0]
  t.match(head, /^From: Moat quarantine <quarantine@example\.com>$/m, "from the organisation's first domain")
  t.match(head, /^Date: Mon, 07 Dec 2026 09:00:00 \+0000$/m)
  t.match(head, /^Message-ID: <digest-\d+-\d+@moat\.example\.com>$/m)
  t.match(head, new RegExp(`^List-Unsubscribe: <${base}/digest/unsubscribe/[\\w-]{20,}>$`, 'm'))
  t.match(head, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m)
  const mail = await parseMessage(raw)
  t.match(mail.text, /Grüße aus dem Büro/, 'the plain-text part decodes encoded subjects too')

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  const page = await (await browser.newContext({ viewport: { width: 900, height: 700 } })).newPage()
  await page.setContent(mail.html)
  await page.screenshot({ path: path.join(SHOTS, 'digest.png'), fullPage: true })
  const days = await page.locator('th[colspan]').allTextContents()
  t.same(days, ['Monday 7 December 2026', 'Sunday 6 December 2026'], 'grouped by day, newest first')
  const rows = page.locator('tbody tr:has(td)')
  t.equal(await rows.count(), 3)
  t.match(await rows.nth(0).textContent(), /You won 5 BTC.*Crypto Wins.*8\.4/, 'newest first: subject, sender, score')
  t.match(await rows.nth(2).textContent(), /Grüße aus dem Büro.*Büro Müller/, 'encoded words decoded')
  t.same(await rows.nth(0).locator('a').allTextContents(), ['Deliver', 'Allow sender', 'Block sender', 'Delete'])
  t.ok(await page.locator('a:has-text("Open my quarantine")').isVisible())

  // Block sender, from the newest entry: the link asks, a GET changes nothing, the button acts.
  const blockHref = await rows.nth(0).locator('a:has-text("Block sender")').getAttribute('href')
  const web = await browser.newPage()
  await web.goto(blockHref)
  t.match(await web.locator('h1').textContent(), /Block this sender and delete this message\?/)
  t.equal(await web.locator('#sender').textContent(), 'win@lottery.test')
  t.ok(db.prepare(`SELECT 1 FROM quarantine WHERE id = ?`).get(today), 'opening the link changed nothing')
  await web.click('button[type=submit]')
  t.match(await web.locator('#done').textContent(), /win@lottery\.test is on your block list/)
  t.notOk(db.prepare(`SELECT 1 FROM quarantine WHERE id = ?`).get(today), 'the entry is gone')
  const lists = new SenderLists(db)
  t.ok(lists.list().some((e) => e.kind === 'block' && e.pattern === 'win@lottery.test' && e.user_id === alice.id), "on alice's own block list")
  await web.goto(blockHref)
  t.match(await web.locator('[role=alert]').textContent(), /not valid/, 'the link is spent')

  // Allow sender, from yesterday's: listed and delivered.
  const allowHref = await rows.nth(2).locator('a:has-text("Allow sender")').getAttribute('href')
  await web.goto(allowHref)
  await web.click('button[type=submit]')
  t.match(await web.locator('#done').textContent(), /offers@promo\.test is on your allow list/)
  t.ok((db.prepare(`SELECT released_at FROM quarantine WHERE id = ?`).get(yesterday) as { released_at: number | null }).released_at, 'released')
  t.ok(lists.list().some((e) => e.kind === 'allow' && e.pattern === 'offers@promo.test'))
  const deliverHref = await rows.nth(2).locator('a:has-text("Deliver")').getAttribute('href')
  t.equal((await fetch(deliverHref, { method: 'POST' })).status, 410, "the entry's other links are spent with it")
  const audit = db.prepare(`SELECT action FROM audit_log WHERE action LIKE 'digest-%' ORDER BY id`).all() as { action: string }[]
  t.same(audit.map((a) => a.action), ['digest-block', 'digest-allow'], 'audited like the same clicks in the quarantine')

  // One-click unsubscribe (RFC 8058): the mail program POSTs, no page needed.
  const unsubscribe = /^List-Unsubscribe: <([^>]+)>/m.exec(head)![1]
  t.equal((await fetch(unsubscribe)).status, 200)
  t.match(new Digests(db).preferences(alice.id), { enabled: true }, 'a GET asks, it does not act')
  const off = await fetch(unsubscribe, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' })
  t.equal(off.status, 200)
  t.match(new Digests(db).preferences(alice.id), { enabled: false }, 'the digest is off')
  t.equal((await fetch(`${base}/digest/unsubscribe/made-up-token`, { method: 'POST' })).status, 404)
})
