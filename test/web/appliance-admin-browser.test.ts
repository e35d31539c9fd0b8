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
import { moat, moatOk, provisionAcme, startRbldnsd, workDir } from '../helpers/appliance'
import { NO_CHROMIUM, SHOTS, webInBrowser } from '../helpers/browser'
import { startSshd } from '../helpers/sshd'


const PASSWORD = 'a long admin password here'

/** acme's appliance with its appliance admin (no TOTP, for the browser) and acme's organisation admin boss. */
function applianceWithAdmins(t: Parameters<typeof workDir>[0]): string {
  const dir = workDir(t)
  provisionAcme(dir, 2525)
  moatOk(dir, ['admin', 'create', '--email', 'root@moat.test', '--password', PASSWORD])
  moatOk(dir, ['admin', 'require-totp', 'off'])
  moatOk(dir, ['user', 'add', 'boss@example.com', '--role', 'org_admin'])
  if (moat(dir, ['user', 'password', 'boss@example.com'], `${PASSWORD}\n`).code !== 0) throw new Error("could not set boss's password")
  return dir
}

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
