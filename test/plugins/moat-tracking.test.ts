/*
 * moat-tracking and the tracking centre over real SMTP: a refused recipient, a relay attempt
 * and a delivered message are each found by `moat track`, with the stage, the check and the
 * words of a refusal, and the delivery attempts and final state of accepted mail; a viewer of
 * another organisation finds none of them.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { openDatabase } from '../../appliance/db/database'
import { GroupCommitter } from '../../appliance/db/group-commit'
import { StoredSettings } from '../../appliance/services/stored-settings'
import { Tenants } from '../../appliance/services/tenants'
import { RefusalRecorder } from '../../appliance/tracking/record'
import { parseTime, Tracking, TRACKING_DAYS_SETTING } from '../../appliance/tracking/search'
import { message, moat, moatOk, provisionAcme, smtpSend, startSink, startSmtp, until, workDir } from '../helpers/appliance'
import { NO_CHROMIUM, SHOTS, webInBrowser } from '../helpers/browser'


const PASSWORD = 'a long enough password here'

const track = (dir: string, args: string[]) => moatOk(dir, ['track', ...args, '--json']).split('\n').filter(Boolean).map((l) => JSON.parse(l))

t.test('where is my mail: refused and delivered, found by sender, recipient, address and id', async (t) => {
  const dir = workDir(t)
  const sink = await startSink()
  t.teardown(() => sink.close())
  provisionAcme(dir, sink.port)
  moatOk(dir, ['org', 'add', 'globex'])
  const smtp = await startSmtp(dir)
  t.teardown(() => smtp.stop())

  const unknown = await smtpSend(smtp.port, { from: 'sender@outside.test', to: ['nobody@example.com'], data: message({ Subject: 'lost' }, 'hello') })
  t.equal(unknown.final.code, 550)
  const relay = await smtpSend(smtp.port, { from: 'sender@outside.test', to: ['victim@elsewhere.test'], data: message({ Subject: 'relay' }, 'hello') })
  t.equal(relay.final.code, 550, 'no open relay')
  const ok = await smtpSend(smtp.port, { from: 'sender@outside.test', to: ['alice@example.com'], data: message({ Subject: 'Quarterly figures', 'Message-ID': '<figures-42@outside.test>' }, 'The figures for the quarter are attached as discussed in our meeting.') })
  t.equal(ok.final.code, 250)
  await sink.waitFor(1)

  const refused = await until(() => {
    const r = track(dir, ['--to', 'nobody@example.com'])
    return r.length ? r : null
  }, 10_000, 'the refusal to be recorded')
  t.equal(refused.length, 1)
  t.match(refused[0], { outcome: 'refused', org: 'acme', mailFrom: 'sender@outside.test', clientIp: '127.0.0.1', refusal: { stage: 'rcpt', code: 550, by: 'moat-recipients' }, recipients: [{ address: 'nobody@example.com', state: 'refused' }] })
  t.match(refused[0].refusal.reason, /\S/, 'with the words the client was told')

  const relayed = track(dir, ['--to', 'victim@elsewhere.test'])
  t.match(relayed, [{ outcome: 'refused', org: null, refusal: { stage: 'rcpt', code: 550 } }], 'a relay attempt is recorded, with no organisation')

  const delivered = await until(() => {
    const r = track(dir, ['--to', 'alice@example.com'])
    return r[0]?.recipients[0]?.state === 'delivered' && r[0].recipients[0].attempts.length ? r : null
  }, 20_000, 'the delivery to show')
  t.match(delivered[0], { outcome: 'accepted', org: 'acme', direction: 'in', verdict: 'clean', subject: 'Quarterly figures', recipients: [{ address: 'alice@example.com', state: 'delivered', attempts: [{ outcome: 'delivered' }] }] })
  const queueId = delivered[0].id
  t.same(track(dir, ['--queue-id', queueId]).map((x) => x.id), [queueId], 'by queue id')
  t.same(track(dir, ['--message-id', '<figures-42@outside.test>']).map((x) => x.id), [queueId], 'by Message-ID')
  t.equal(track(dir, ['--from', 'sender@outside.test']).length, 3, 'by sender: all three transactions')
  t.equal(track(dir, ['--ip', '127.0.0.1', '--since', '1h']).length, 3, 'by client address and time')
  t.equal(track(dir, ['--ip', '127.0.0.1', '--until', '1h']).length, 0, 'nothing before the time range')
  t.match(moatOk(dir, ['track', '--to', 'nobody@example.com']), /REFUSED 550 at rcpt by moat-recipients/, 'the plain listing says it in one line')

  // Scope: another organisation's viewer sees none of it; acme's sees its own but not the relay attempt.
  const db = openDatabase(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  const tenants = new Tenants(db)
  const globex = tenants.orgByName('globex')!.id
  const acme = tenants.orgByName('acme')!.id
  const scope = (orgIds: number[]) => ({ orgIds, userId: null, addresses: [], surespam: true })
  t.same(new Tracking(db).search({}, scope([globex])), [], 'globex sees nothing of acme\'s')
  t.same(new Tracking(db).search({}, scope([acme])).map((x) => x.outcome).sort(), ['accepted', 'refused'])
  t.same(new Tracking(db).search({}, { orgIds: [acme], userId: 99, addresses: ['alice@example.com'], surespam: false }).map((x) => x.id), [queueId], 'an end user: only mail to or from them')

  // The page, in Chromium: the admin finds the refusal; alice finds only her own mail.
  if (NO_CHROMIUM) return
  moatOk(dir, ['admin', 'create', '--email', 'root@moat.test', '--password', PASSWORD])
  moatOk(dir, ['admin', 'require-totp', 'off'])
  t.equal(moat(dir, ['user', 'password', 'alice@example.com'], `${PASSWORD}\n`).code, 0)
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)
  const root = await signIn('root@moat.test')
  // The home page, where the admin lands: today's numbers from the real mail above, plotted.
  await root.waitForSelector('figure.chart.interactive .uplot')
  t.match(await root.textContent('[data-tile=inbound]'), /^\s*1\s*Mail in/, "today's one accepted message")
  t.match(await root.textContent('[data-tile=bounced]'), /^\s*0\s/, 'no failed delivery')
  t.equal(await root.locator('figure.chart.interactive').count(), 2, 'mail in and out, last 24 hours, interactive')
  const hours = (await root.locator('figure.chart.interactive .u-over').first().boundingBox())!
  await root.mouse.move(hours.x + hours.width - 3, hours.y + hours.height / 2)
  t.match(await root.locator('figure.chart.interactive .u-legend').first().textContent(), /clean\s*1\b/, 'this hour: one clean message, under the cursor')
  await root.screenshot({ path: path.join(SHOTS, 'home-admin.png'), fullPage: true })
  await root.click('nav a[href="/tracking"]')
  t.equal(await root.locator('#tracking tbody tr').count(), 3, 'all three transactions')
  await root.fill('input[name=to]', 'nobody@example.com')
  await root.click('button:has-text("Search")')
  t.equal(await root.locator('#tracking tbody tr').count(), 1)
  t.match(await root.textContent('#tracking tbody'), /refused 550.*nobody@example\.com: refused.*at rcpt by moat-recipients/s)
  await root.fill('input[name=to]', '')
  await root.fill('input[name=since]', 'last week')
  await root.click('button:has-text("Search")')
  t.match(await root.textContent('[role=alert]'), /"last week" is not a time/)
  await root.goto(`${web.url}/tracking`)
  await root.screenshot({ path: path.join(SHOTS, 'tracking.png'), fullPage: true })

  // Statistics: the charts become uPlot plots (no CSP complaint), with the value under the cursor.
  const cspErrors: string[] = []
  root.on('console', (m: { type(): string; text(): string }) => {
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text())
  })
  await root.goto(`${web.url}/stats`)
  await root.waitForSelector('figure.chart.interactive .uplot')
  t.equal(await root.locator('figure.chart.interactive').count(), 3, 'every chart is interactive')
  const over = (await root.locator('figure.chart.interactive .u-over').first().boundingBox())!
  await root.mouse.move(over.x + over.width - 3, over.y + over.height / 2)
  t.match(await root.locator('figure.chart.interactive .u-legend').first().textContent(), /clean\s*1\b/, "today's one clean message, under the cursor")
  await root.screenshot({ path: path.join(SHOTS, 'stats-uplot.png'), fullPage: true })
  t.same(cspErrors, [], 'no CSP complaints')
  const alice = await signIn('alice@example.com')
  t.match(await alice.textContent('[data-tile=inbound]'), /^\s*1\s*Mail to you/, 'her home page: her one message')
  t.equal(await alice.locator('[data-tile=outbound], [data-tile=alerts]').count(), 0, 'no appliance numbers for an end user')
  await alice.screenshot({ path: path.join(SHOTS, 'home-user.png'), fullPage: true })
  await alice.goto(`${web.url}/tracking`)
  t.equal(await alice.locator('#tracking tbody tr').count(), 1, 'alice sees her own mail only')
  t.match(await alice.textContent('#tracking tbody'), /alice@example\.com: delivered/)
})

t.test('kept 0 days: nothing is recorded; the time words', async (t) => {
  const dir = workDir(t)
  const db = openDatabase(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  const committer = new GroupCommitter(db)
  const recorder = new RefusalRecorder(db, committer)
  const count = () => db.prepare('SELECT count(*) FROM smtp_refusals').pluck().get()
  const refusal = { at: Date.now(), session: 's1', clientIp: '192.0.2.1', helo: null, mailFrom: 'a@b.test', rcpts: ['x@y.test', 'z@y.test'], stage: 'rcpt', code: 550, reason: 'no', plugin: 'p' }
  recorder.record(refusal)
  await new Promise((r) => setTimeout(r, 50))
  t.equal(count(), 0, 'no commit of its own: it waits for the next batch of mail')
  await committer.submit(() => null)
  t.equal(count(), 2, 'one row a recipient, written with the next mail commit')
  recorder.record({ ...refusal, session: 's2' })
  await new Promise((r) => setTimeout(r, 2300))
  t.equal(count(), 4, 'and within 2 s when no mail comes')
  new StoredSettings(db).set(TRACKING_DAYS_SETTING, 0)
  const off = new RefusalRecorder(db, committer)
  off.record({ ...refusal, at: Date.now() })
  await committer.submit(() => null)
  t.equal(count(), 4, 'off: not recorded')
  const now = Date.parse('2026-12-07T12:00:00Z')
  t.equal(parseTime('-2h', now), now - 7_200_000)
  t.equal(parseTime('3d', now), now - 3 * 86_400_000)
  t.equal(parseTime('2026-12-01T00:00:00Z', now), Date.parse('2026-12-01T00:00:00Z'))
  t.throws(() => parseTime('yesterday', now), /not a time/)
})
