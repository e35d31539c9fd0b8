/*
 * Removing a domain and an organisation from the UI, in Chromium against the real web app,
 * with mail accepted and delivered by the real SMTP service first. Each removal shows what goes
 * with it before it happens; an organisation's asks for its name. Afterwards its mail is refused
 * at RCPT, and nothing of it is left: not its rows, not its full-text entries, not its bytes.
 * The organisation beside it keeps everything. An organisation admin cannot remove their
 * organisation; another MSP's admin cannot even see the page.
 */
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { message, moatOk, smtpSend, startSink, startSmtp } from '../helpers/appliance'
import { ADMIN_PASSWORD, applianceWithAdmins, NO_CHROMIUM, SHOTS, webInBrowser } from '../helpers/browser'

const PASSWORD = ADMIN_PASSWORD

t.test('removing a domain and an organisation in the UI', { skip: NO_CHROMIUM }, async (t) => {
  const sink = await startSink()
  t.teardown(() => sink.close())
  const dir = applianceWithAdmins(t, sink.port)
  moatOk(dir, ['domain', 'add', 'old-brand.test', '--org', 'acme', '--deliver-to', `127.0.0.1:${sink.port}`])
  moatOk(dir, ['user', 'add', 'carol@old-brand.test'])
  moatOk(dir, ['alias', 'add', 'sales@old-brand.test', 'carol@old-brand.test'])
  moatOk(dir, ['org', 'add', 'globex'])
  moatOk(dir, ['domain', 'add', 'globex.test', '--org', 'globex', '--deliver-to', `127.0.0.1:${sink.port}`])
  moatOk(dir, ['user', 'add', 'hank@globex.test'])
  moatOk(dir, ['msp', 'add', 'Northwind'])
  moatOk(dir, ['admin', 'create', '--email', 'ops@northwind.test', '--password', PASSWORD, '--msp', 'northwind'])

  const smtp = await startSmtp(dir)
  const send = (to: string, subject: string) =>
    smtpSend(smtp.port, { from: 'news@sender.test', to: [to], data: message({ From: 'news@sender.test', To: to, Subject: subject }, `About ${subject}: zanzibarquokka ${subject}\n`) })
  for (const [to, subject] of [['alice@example.com', 'acme-one'], ['alice@example.com', 'acme-two'], ['hank@globex.test', 'globex-one'], ['hank@globex.test', 'globex-two']]) {
    t.equal((await send(to, subject)).final.code, 250, `${subject} accepted`)
  }
  await sink.waitFor(4, 30_000)

  const db = new Database(path.join(dir, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())
  const orgId = (name: string) => (db.prepare(`SELECT id FROM organisations WHERE name = ?`).get(name) as { id: number }).id
  const acme = orgId('acme')
  const globex = orgId('globex')
  const globexIds = (db.prepare(`SELECT id FROM messages WHERE org_id = ?`).all(globex) as { id: number }[]).map((r) => r.id)
  const globexRaws = (db.prepare(`SELECT raw_id FROM messages WHERE org_id = ?`).all(globex) as { raw_id: number }[]).map((r) => r.raw_id)
  t.equal(globexIds.length, 2, 'globex has its two messages archived')
  const rawCount = () => (db.prepare(`SELECT count(*) AS n FROM raw_messages`).get() as { n: number }).n
  const rawsBefore = rawCount()

  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)
  const boss = await signIn('boss@example.com')
  t.equal((await boss.goto(`${web.url}/orgs/${acme}/remove`)).status(), 404, 'an organisation admin cannot remove their organisation')
  const ops = await signIn('ops@northwind.test')
  t.equal((await ops.goto(`${web.url}/orgs/${globex}/remove`)).status(), 404, "another MSP's admin does not see the page")
  const domainId = (db.prepare(`SELECT id FROM domains WHERE name = 'old-brand.test'`).get() as { id: number }).id
  t.equal((await ops.goto(`${web.url}/orgs/${acme}/domains/${domainId}/remove`)).status(), 404, "nor another MSP's domain")

  // A domain: the org admin may remove one of theirs, after a page that says what goes.
  await boss.goto(`${web.url}/orgs/${acme}`)
  await boss.click('a[aria-label="Remove old-brand.test"]')
  t.match(await boss.textContent('#footprint'), /1 user and 1 alias of the domain go with it/)
  await boss.screenshot({ path: path.join(SHOTS, 'remove-domain.png'), fullPage: true })
  await boss.click('button:has-text("Remove old-brand.test")')
  t.match(await boss.textContent('#done'), /Domain removed/)
  t.notMatch(await boss.textContent('#domains'), /old-brand\.test/, 'the domain is gone from the page')
  t.same((JSON.parse(moatOk(dir, ['domain', 'list', '--json'])) as { name: string }[]).map((d) => d.name).sort(), ['example.com', 'globex.test'], 'and from the appliance')
  t.notMatch(moatOk(dir, ['user', 'list', '--json']), /old-brand/, 'its user went with it')
  t.notMatch(moatOk(dir, ['alias', 'list', '--json']), /old-brand/, 'and its alias')
  t.equal((await send('carol@old-brand.test', 'after')).final.code, 550, "the domain's mail is refused at once")

  // An organisation: the footprint, a wrong name refused, the right one removes everything.
  const page = await signIn('root@moat.test')
  await page.goto(`${web.url}/orgs/${globex}`)
  await page.click('a:has-text("Remove globex")')
  const footprint = await page.textContent('#footprint')
  t.match(footprint, /1 domain: mail to it is refused/)
  t.match(footprint, /1 user and 0 aliases/)
  t.match(footprint, /2 archived messages/)
  t.notMatch(footprint, /never be delivered/, 'all its mail was delivered: no warning')
  await page.fill('input[name=confirm]', 'acme')
  await page.click('button:has-text("Remove globex for good")')
  t.match(await page.textContent('[role=alert]'), /Type the organisation's name, globex, exactly/)
  t.ok(db.prepare(`SELECT 1 FROM organisations WHERE id = ?`).get(globex), 'a wrong name removes nothing')
  await page.screenshot({ path: path.join(SHOTS, 'remove-organisation.png'), fullPage: true })
  await page.fill('input[name=confirm]', 'globex')
  await page.click('button:has-text("Remove globex for good")')
  t.match(await page.textContent('#done'), /Organisation removed, with 2 archived messages/)
  t.notMatch(await page.textContent('#orgs'), /globex/, 'gone from the list')

  t.notMatch(moatOk(dir, ['org', 'list', '--json']), /globex/, 'gone from the appliance')
  t.equal((db.prepare(`SELECT count(*) AS n FROM messages WHERE org_id = ?`).get(globex) as { n: number }).n, 0, 'its messages are gone')
  const placeholders = globexIds.map(() => '?').join(',')
  t.equal((db.prepare(`SELECT count(*) AS n FROM archive_fts WHERE rowid IN (${placeholders})`).get(...globexIds) as { n: number }).n, 0, 'and their full-text entries')
  t.equal((db.prepare(`SELECT count(*) AS n FROM archive_fts WHERE archive_fts MATCH 'zanzibarquokka'`).get() as { n: number }).n, 2, "only acme's two messages still match the shared word")
  t.equal(rawCount(), rawsBefore - new Set(globexRaws).size, 'and their raw bytes')
  t.equal((await send('hank@globex.test', 'after')).final.code, 550, "the organisation's mail is refused")
  const audit = (db.prepare(`SELECT action, detail FROM audit_log ORDER BY id`).all() as { action: string; detail: string }[]).map((a) => `${a.action} ${a.detail}`)
  t.ok(audit.includes('org-remove globex with 2 archived messages'), 'the removal is in the audit log')
  t.ok(audit.includes('domain-remove old-brand.test from acme'))

  // acme keeps all of its mail, searchable.
  await page.goto(`${web.url}/archive?q=zanzibarquokka`)
  t.equal(await page.locator('#archive tbody tr').count(), 2, "acme's archive is whole")
})
