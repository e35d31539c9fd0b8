/*
 * The classifier page in Chromium against the real web app and database: the appliance admin
 * tests messages against the engine, teaches it a message as spam (and the same message then
 * scores higher), learns the users' waiting reports at once, and downloads the reports as a
 * labelled corpus. Nobody else reaches the page.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as tar from 'tar'
import t from 'tap'
import { message, until } from '../helpers/appliance'
import { ADMIN_PASSWORD, applianceWithAdmins, NO_CHROMIUM, SHOTS, webInBrowser } from '../helpers/browser'
import { openDatabase } from '../../appliance/db/database'
import { recordReports } from '../../appliance/engine/reports'

const PASSWORD = ADMIN_PASSWORD

const campaign = message(
  { From: 'Prize Desk <desk@winners.test>', To: 'alice@example.com', Subject: 'Your quorvantix bonus is waiting' },
  'Claim your quorvantix bonus today. Quorvantix members get the zelbrint reward. Visit the quorvantix desk to claim.\n',
)

t.test('the classifier page: test, teach, learn the reports, download them', { skip: NO_CHROMIUM }, async (t) => {
  const dir = applianceWithAdmins(t)
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)
  const boss = await signIn('boss@example.com')
  t.equal((await boss.goto(`${web.url}/classifier`)).status(), 404, 'an organisation admin does not reach it')
  t.equal((await boss.goto(`${web.url}/classifier/reports.tar.gz`)).status(), 404, 'nor the reports')

  const page = await signIn('root@moat.test')
  await page.goto(`${web.url}/settings`)
  await page.click('a[href="/classifier"]')
  t.match(await page.textContent('#model'), /the model shipped with Moat/)

  const files = (buffers: [string, Buffer][]) => buffers.map(([name, buffer]) => ({ name, mimeType: 'message/rfc822', buffer }))
  const scoreOf = async () => {
    await page.setInputFiles('#test input[type=file]', files([['campaign.eml', campaign], ['note.eml', message({ From: 'bob@example.com', To: 'alice@example.com', Subject: 'Lunch' }, 'See you at noon.\n')]]))
    await page.click('#test button')
    const rows = await page.locator('#tested tbody tr').allTextContents()
    t.equal(rows.length, 2, 'one row a file')
    t.match(rows[1], /^note\.eml/)
    return Number(await page.locator('#tested tbody tr:first-child td.num').textContent())
  }
  const before = await scoreOf()
  await page.screenshot({ path: path.join(SHOTS, 'classifier-test.png'), fullPage: true })

  await page.setInputFiles('#teach input[type=file]', files([['big.eml', Buffer.alloc(11 * 1024 * 1024, 'a')]]))
  await page.click('#teach button')
  t.match(await page.textContent('[role=alert]'), /big\.eml is larger than 10 MB/, 'a file too large is refused by name')

  await page.setInputFiles('#teach input[type=file]', files([['campaign.eml', campaign]]))
  await page.selectOption('#teach select', 'spam')
  await page.click('#teach button')
  t.match(await page.textContent('#done'), /Learned 1 message as spam/)
  t.match(await page.textContent('#model'), /In use: model \d+/, 'a model of its own now')
  const after = await scoreOf()
  t.ok(after > before, `the taught message scores higher now (${before.toFixed(2)} → ${after.toFixed(2)})`)

  // A user's "not spam" report, as the quarantine and the API record it, waits for the job.
  const db = openDatabase(path.join(dir, 'moat.db'))
  recordReports(db, [{ raw: message({ From: 'news@shop.test', To: 'alice@example.com', Subject: 'Your order' }, 'Your order 1234 has shipped.\n'), spam: false }], 'alice@example.com: quarantine 1')
  db.close()
  await page.goto(`${web.url}/classifier`)
  t.match(await page.textContent('#reports'), /2 "spam" and "not spam" reports kept, 1 waiting/)
  await page.click('button:has-text("Learn waiting reports now")')
  t.match(await page.textContent('#done'), /Learned 1 report/)
  t.match(await page.textContent('#reports'), /0 waiting/)
  t.ok(await page.isDisabled('button:has-text("Learn waiting reports now")'), 'nothing left to learn')

  const download = await page.request.get(`${web.url}/classifier/reports.tar.gz`)
  t.equal(download.status(), 200)
  t.match(download.headers()['content-disposition'], /attachment; filename="moat-reports-\d{4}-\d{2}-\d{2}\.tar\.gz"/)
  const out = path.join(dir, 'corpus')
  fs.mkdirSync(out)
  fs.writeFileSync(path.join(dir, 'reports.tar.gz'), await download.body())
  await tar.extract({ file: path.join(dir, 'reports.tar.gz'), cwd: out })
  const manifest = fs.readFileSync(path.join(out, 'manifest.csv'), 'utf8').trim().split('\n')
  t.equal(manifest.length, 3, 'a header and the two reports')
  t.equal(fs.readdirSync(path.join(out, 'spam')).length, 1)
  t.equal(fs.readdirSync(path.join(out, 'ham')).length, 1)
  t.same(fs.readFileSync(path.join(out, 'spam', fs.readdirSync(path.join(out, 'spam'))[0])), campaign, 'the taught message, byte for byte')
  await until(() => !fs.readdirSync(os.tmpdir()).some((n) => n.startsWith('moat-reports-')), 5000, 'the export folder removed')
  t.pass('the export folder is gone after the download')
})
