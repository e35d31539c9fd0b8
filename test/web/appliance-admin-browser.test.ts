/*
 * The appliance admin's own pages in Chromium.
 *
 * Backups, in Chromium against the real web app and Debian's OpenSSH server: the admin
 * sets the SFTP target (the pinned key is the server's), makes a backup now, sees it kept on
 * the appliance and on the server, and stages a restore of the server's copy. Nobody but the
 * appliance admin reaches the page.
 */
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { moatOk, provisionAcme, startRbldnsd, workDir } from '../helpers/appliance'
import { ADMIN_PASSWORD, applianceWithAdmins, NO_CHROMIUM, SHOTS, webInBrowser } from '../helpers/browser'
import { openDatabase } from '../../appliance/db/database'
import { recordFingerprints } from '../../appliance/learning/fingerprint-store'
import { pendingReports, recordReports } from '../../appliance/engine/reports'
import { JOBS } from '../../appliance/jobs/scheduler'
import { startSshd } from '../helpers/sshd'


const PASSWORD = ADMIN_PASSWORD


t.test('nightly backups and the copy off the box, set in the UI', { skip: NO_CHROMIUM }, async (t) => {
  const dir = applianceWithAdmins(t)
  const sshd = await startSshd(path.join(dir, 'sshd'), [moatOk(dir, ['backup', 'key']).trim()])
  t.teardown(() => sshd.stop())
  const offsite = path.join(dir, 'offsite')
  fs.mkdirSync(offsite)
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)
  const boss = await signIn('boss@example.com')
  t.equal((await boss.goto(`${web.url}/system/backups`)).status(), 404, 'an organisation admin does not reach backups')

  const page = await signIn('root@moat.test')
  await page.goto(`${web.url}/status`)
  await page.click('a[href="/system/backups"]')
  t.match(await page.textContent('#backup-status'), /No scheduled backup has been made yet/)
  t.match(await page.textContent('#backup-key'), /^ssh-ed25519 \S+ moat-backup/)

  await page.fill('input[name=localDir]', 'relative/folder')
  await page.click('button:has-text("Save schedule")')
  t.match(await page.textContent('[role=alert]'), /Not saved: localDir: an absolute path/)
  await page.fill('input[name=time]', '03:45')
  await page.fill('input[name=keep]', '5')
  await page.fill('input[name=localDir]', '')
  await page.click('button:has-text("Save schedule")')
  t.match(await page.textContent('#done'), /a backup every night at 03:45, the newest 5 kept/)

  await page.fill('input[name=host]', '127.0.0.1')
  await page.fill('input[name=port]', String(sshd.port))
  await page.fill('input[name=username]', sshd.user)
  await page.fill('input[name=path]', offsite)
  await page.click('button:has-text("Connect and save")')
  t.match(await page.textContent('#done'), new RegExp(`host key ${sshd.fingerprint.replace(/[+/]/g, '\\$&')} is pinned`), 'the pinned key is the server\'s')

  await page.click('button:has-text("Back up now")')
  t.match(await page.textContent('#done'), /Backup moat-backup-.*\.tar\.gz made and copied off the box/)
  t.equal(await page.locator('#kept-local tbody tr').count(), 1)
  await page.waitForSelector('table#kept-remote')
  t.equal(await page.locator('#kept-remote tbody tr').count(), 1, 'the server\'s listing loads after the page')
  t.equal(fs.readdirSync(offsite).filter((n) => n.endsWith('.tar.gz')).length, 1)
  t.match(await page.textContent('#backup-status'), /Last good backup .*, also copied off the box/)
  await page.screenshot({ path: path.join(SHOTS, 'backups.png'), fullPage: true })

  await page.click('#kept-remote button:has-text("Restore this")')
  t.match(await page.textContent('#done'), /is checked and staged\. Restart the services/)
  t.ok(fs.existsSync(path.join(dir, 'restore-pending/moat.db')), 'the copy from the server is staged')
  const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
  t.same((db.prepare(`SELECT action FROM audit_log WHERE action LIKE 'backup%' OR action = 'restore-staged' ORDER BY id`).all() as { action: string }[]).map((r) => r.action), ['backup-schedule', 'backup-sftp', 'backup', 'restore-staged'], 'each action is in the audit log')
  db.close()
})

t.test('several MSPs: the appliance admin adds one, its admin, and hands it an organisation', { skip: NO_CHROMIUM }, async (t) => {
  const dir = workDir(t)
  provisionAcme(dir, 2525)
  moatOk(dir, ['admin', 'create', '--email', 'root@moat.test', '--password', PASSWORD])
  moatOk(dir, ['admin', 'require-totp', 'off'])
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)
  const page = await signIn('root@moat.test')
  await page.click('nav a[href="/msps"]')
  await page.fill('input[name=name]', 'northwind')
  await page.click('button:has-text("Add MSP")')
  t.match(await page.textContent('#done'), /MSP added/)
  await page.selectOption('select[name=msp]', 'northwind')
  await page.fill('input[name=email]', 'ops@northwind.test')
  await page.fill('input[name=password]', PASSWORD)
  await page.click('button:has-text("Add admin")')
  t.match(await page.textContent('#done'), /MSP admin added/)
  await page.selectOption('select[name=org]', 'acme')
  await page.selectOption('select[aria-label="to MSP"]', 'northwind')
  await page.click('button:has-text("Hand over")')
  t.match(await page.textContent('#done'), /Organisation handed over/)
  t.match(await page.textContent('#msps'), /northwind\s*1\s*ops@northwind\.test/)
  await page.screenshot({ path: path.join(SHOTS, 'msps.png'), fullPage: true })

  // The new MSP's admin signs in and finds its organisation.
  const ops = await signIn('ops@northwind.test')
  await ops.goto(`${web.url}/orgs`)
  t.match(await ops.textContent('#orgs'), /acme/)
  t.equal(await ops.locator('nav a[href="/msps"]').count(), 0, 'no MSPs page for an MSP admin')
})

t.test("the appliance's own addresses on blocklists: watched, checked and listed in the UI", { skip: NO_CHROMIUM }, async (t) => {
  const dir = applianceWithAdmins(t)
  // A real DNS server on loopback with one list that has us on it and one that does not.
  const dns = await startRbldnsd(path.join(dir, 'dns'), { 'bl.test': ['ip4set', '192.0.2.25 :127.0.0.2:Listed for spam\n'], 'clean.test': ['ip4set', '203.0.113.1\n'] })
  t.teardown(() => dns.proc.kill())
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD, { MOAT_DNS_SERVER: `127.0.0.1:${dns.port}` })
  const page = await signIn('root@moat.test')
  await page.click('nav a[href="/outbound"]')
  t.ok(await page.isChecked('#rbl-ips input[name=auto]'), "by default, this machine's own addresses")
  t.ok((await page.inputValue('#rbl-zones textarea')).split('\n').length >= 100, 'the shipped list of over 100 blocklists')

  await page.fill('#rbl-ips input[name=ips]', '192.0.2.25')
  await page.click('button:has-text("Save addresses")')
  t.match(await page.textContent('[role=alert]'), /not both/, 'a clear error: the box is still ticked')
  await page.uncheck('#rbl-ips input[name=auto]')
  await page.fill('#rbl-ips input[name=ips]', '192.0.2.25 not-an-ip')
  await page.click('button:has-text("Save addresses")')
  t.match(await page.textContent('[role=alert]'), /"not-an-ip" is not an IP address/)
  await page.uncheck('#rbl-ips input[name=auto]')
  await page.fill('#rbl-ips input[name=ips]', '192.0.2.25')
  await page.click('button:has-text("Save addresses")')
  t.match(await page.textContent('#done'), /these addresses are watched/)

  await page.fill('#rbl-zones textarea', '# our test lists\nbl.test\nclean.test\nbad zone!\n')
  await page.click('button:has-text("Save blocklists")')
  t.match(await page.textContent('[role=alert]'), /"bad zone!" in the list is not a DNS zone/)
  await page.fill('#rbl-zones textarea', '# our test lists\nbl.test\nclean.test\n')
  await page.click('button:has-text("Save blocklists")')
  t.match(await page.textContent('#done'), /these blocklists are watched/)
  t.same(JSON.parse(moatOk(dir, ['rbl', 'zones', '--json'])), ['bl.test', 'clean.test'], 'what the CLI and the job see')

  await page.click('button:has-text("Check now")')
  t.match(await page.textContent('#done'), /listed on 1 blocklist/)
  t.match(await page.textContent('#listed'), /192\.0\.2\.25\s*bl\.test/)
  t.match(await page.textContent('#rbl-history'), /192\.0\.2\.25\s*bl\.test.*listed/s)
  await page.screenshot({ path: path.join(SHOTS, 'outbound-rbl.png'), fullPage: true })
  await page.click('button:has-text("Back to the shipped list")')
  t.ok(JSON.parse(moatOk(dir, ['rbl', 'zones', '--json'])).length >= 100, 'back to the shipped list')

  const boss = await signIn('boss@example.com')
  t.equal((await boss.request.post(`${web.url}/outbound/rbl/check`)).status(), 403, 'not for an organisation admin (and no CSRF token either)')
})

t.test('settings the shell had alone, as forms: retention, TOTP, bounce keys, fleet incidents and agents, learning, rules, fingerprints', { skip: NO_CHROMIUM }, async (t) => {
  const dir = applianceWithAdmins(t)
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)
  const page = await signIn('root@moat.test')
  await page.click('nav a[href="/settings"]')

  // The browser refuses it already (max=3650); the server's own check is for other clients.
  await page.$eval('#retention input[name=tracking_days]', (e: { removeAttribute(n: string): void }) => e.removeAttribute('max'))
  await page.fill('#retention input[name=tracking_days]', '4000')
  await page.click('button:has-text("Save retention")')
  t.match(await page.textContent('[role=alert]'), /Refusals: a whole number of days from 0 to 3650/)
  await page.fill('#retention input[name=tracking_days]', '90')
  await page.fill('#retention input[name=delivery_days]', '21')
  await page.click('button:has-text("Save retention")')
  t.match(await page.textContent('#done'), /keeps records this long/)
  t.match(moatOk(dir, ['track', 'days']), /kept 90 days/, 'what the CLI and the nightly job read')
  t.match(moatOk(dir, ['delivery', 'retention']), /kept 21 days/)

  const keysBefore = JSON.parse(moatOk(dir, ['bounce-keys', 'list', '--json'])).length
  await page.click('button:has-text("Make a new key")')
  t.match(await page.textContent('#done'), /New bounce key/)
  t.equal(JSON.parse(moatOk(dir, ['bounce-keys', 'list', '--json'])).length, keysBefore + 1)

  await page.fill('#fleet-incidents input[name=mail]', 'noc@msp.test, not an address')
  await page.click('button:has-text("Save incidents")')
  t.match(await page.textContent('[role=alert]'), /not an e-mail address: "not an address"/)
  await page.fill('#fleet-incidents input[name=mail]', 'noc@msp.test')
  await page.fill('#fleet-incidents input[name=webhook]', 'https://tickets.msp.test/hook')
  await page.click('button:has-text("Save incidents")')
  t.match(moatOk(dir, ['fleet', 'mail']), /noc@msp\.test/)
  t.match(moatOk(dir, ['fleet', 'webhook']), /https:\/\/tickets\.msp\.test\/hook/)

  await page.uncheck('#totp input[name=required]')
  await page.click('button:has-text("Save sign-in")')
  t.match(await page.textContent('#done'), /optional/)
  await page.screenshot({ path: path.join(SHOTS, 'settings.png'), fullPage: true })
  await page.check('#totp input[name=required]')
  await page.click('button:has-text("Save sign-in")')
  await page.waitForURL(/\/account\/totp/)
  t.pass('required again: root, who has no second factor, is sent to set one up before anything else')
  moatOk(dir, ['admin', 'require-totp', 'off'])

  // An organisation's agents and thresholds.
  const acme = (JSON.parse(moatOk(dir, ['org', 'list', '--json'])) as { id: number; name: string }[]).find((o) => o.name === 'acme')!
  await page.goto(`${web.url}/orgs/${acme.id}`)
  await page.click('a:has-text("fleet settings")')
  await page.fill('#agents input[name=metricsCron]', 'every minute')
  await page.click('button:has-text("Save agents")')
  t.match(await page.textContent('[role=alert]'), /"every minute" is not a cron expression/)
  await page.fill('#agents input[name=metricsCron]', '*/5 * * * *')
  await page.selectOption('#agents select[name=logPriority]', '3')
  await page.click('button:has-text("Save agents")')
  t.same(JSON.parse(moatOk(dir, ['fleet', 'settings', '--org', 'acme', '--json'])), { metricsCron: '*/5 * * * *', logPriority: 3 })
  await page.fill('#thresholds input[name=diskPercent]', '80')
  await page.click('button:has-text("Save thresholds")')
  t.match(JSON.parse(moatOk(dir, ['fleet', 'rules', '--org', 'acme', '--json'])), { diskPercent: 80 })
  await page.screenshot({ path: path.join(SHOTS, 'fleet-settings.png'), fullPage: true })
  const boss = await signIn('boss@example.com')
  t.equal((await boss.goto(`${web.url}/orgs/${acme.id}/fleet-settings`)).status(), 404, "not the organisation admin's (a 404, as every page beyond a role)")

  // The organisation's learning opt-outs, on its policy form.
  await page.goto(`${web.url}/orgs/${acme.id}`)
  await page.uncheck('input[name=share_learning]')
  await page.click('button:has-text("Save policy")')
  t.match(JSON.parse(moatOk(dir, ['org', 'policy', 'acme', '--json'])), { share_learning: 0, learn_outbound: 1 })

  // Rules: export what is there, import a file.
  const rulesFile = path.join(dir, 'rules.json')
  fs.writeFileSync(rulesFile, JSON.stringify([{ name: 'FROM_FILE', org: 'acme', what: { subject: 'overdue invoice' }, action: 'spam' }]))
  await page.goto(`${web.url}/rules`)
  const download = page.waitForEvent('download')
  await page.click('#export')
  const exported = JSON.parse(fs.readFileSync(await (await download).path(), 'utf8'))
  t.same(exported.map((r: { name: string }) => r.name), JSON.parse(moatOk(dir, ['rule', 'export'])).map((r: { name: string }) => r.name), 'the export is what moat rule export gives')
  await page.setInputFiles('#import input[type=file]', rulesFile)
  await page.click('button:has-text("Import rules")')
  t.match(await page.textContent('#done'), /Imported 1 rule/)
  t.ok(JSON.parse(moatOk(dir, ['rule', 'list', '--json'])).some((r: { name: string; org: string }) => r.name === 'FROM_FILE' && r.org === 'acme'))

  // Fingerprints: a reporter's words withdrawn.
  const db = openDatabase(path.join(dir, 'moat.db'))
  recordFingerprints(db, [{ kind: 'url', key: 'ab'.repeat(16) }, { kind: 'url', key: 'cd'.repeat(16) }], { label: 'spam', reporter: 'user:mallory@example.com', trust: 1 })
  db.close()
  await page.goto(`${web.url}/fingerprints`)
  t.match(await page.textContent('#counts'), /url\s*spam\s*this appliance\s*2/)
  await page.click('#reporters button:has-text("Withdraw all of theirs")')
  t.match(await page.textContent('#done'), /Withdrew 2 fingerprints/)
  t.same(JSON.parse(moatOk(dir, ['fingerprints', '--json'])).counts, [], 'none left')
  t.equal((await boss.goto(`${web.url}/fingerprints`)).status(), 404)
})

t.test('scheduled jobs: what runs when, and running one now', { skip: NO_CHROMIUM }, async (t) => {
  const dir = applianceWithAdmins(t)
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)
  const boss = await signIn('boss@example.com')
  t.equal((await boss.goto(`${web.url}/system/jobs`)).status(), 404, 'an organisation admin does not reach the jobs')

  const page = await signIn('root@moat.test')
  await page.goto(`${web.url}/status`)
  await page.click('a[href="/system/jobs"]')
  const rows = await page.locator('#jobs tbody tr').allTextContents()
  t.equal(rows.length, JOBS.length, 'every job listed')
  t.ok(rows.some((r: string) => /^retention\s*daily at 03:17/.test(r)), 'the nightly clean-up, when people read it')

  // A user's report waits for learn-reports; running it now learns it at once.
  const db = openDatabase(path.join(dir, 'moat.db'))
  recordReports(db, [{ raw: Buffer.from('From: a@shop.test\r\nTo: alice@example.com\r\nSubject: order\r\n\r\nYour order has shipped.\r\n'), spam: false }], 'alice@example.com: quarantine 1')
  t.equal(pendingReports(db), 1)
  await page.click('button[aria-label="Run learn-reports now"]')
  t.match(await page.textContent('#job-result'), /learn-reports ran\.[\s\S]*"learned": 1/)
  t.equal(pendingReports(db), 0, 'the report is learned')
  await page.click('button[aria-label="Run learn-reports now"]')
  t.match(await page.textContent('#job-result'), /Nothing to do/, 'a second run finds nothing')
  db.close()
})
