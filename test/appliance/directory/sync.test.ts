/*
 * Users from the directory, against Debian's OpenLDAP with an Active Directory-like schema:
 * users and their proxyAddresses aliases come in, disabled and deleted accounts go, what an
 * admin made by hand stays, and a search that finds nobody changes nothing.
 */
import path from 'node:path'
import t from 'tap'
import { AD_FILTER, DirectorySync, readEntry } from '../../../appliance/directory/sync'
import { openDatabase, type Db } from '../../../appliance/db/database'
import { Tenants } from '../../../appliance/services/tenants'
import { moat, moatOk, workDir } from '../../helpers/appliance'
import { adUser, READER_DN, READER_PASSWORD, startSlapd, SUFFIX } from '../../helpers/slapd'

const people = `ou=people,${SUFFIX}`
const users = (db: Db, org: number) => (db.prepare('SELECT email, display_name, from_directory FROM users WHERE org_id = ? ORDER BY email').all(org) as { email: string; display_name: string | null; from_directory: number }[])
const aliases = (db: Db) => (db.prepare('SELECT a.address, u.email AS target FROM aliases a JOIN users u ON u.id = a.user_id ORDER BY a.address').all() as { address: string; target: string }[]).map((a) => `${a.address}>${a.target}`)

t.test('what an entry gives', async (t) => {
  t.same(readEntry({ mail: 'Alice@Example.com', proxyAddresses: ['SMTP:alice@example.com', 'smtp:a.smith@example.com', 'X400:c=US;a= ;p=Corp', 'sip:alice@example.com'], userAccountControl: '512', displayName: 'Alice Smith' }), {
    primary: 'alice@example.com', displayName: 'Alice Smith', aliases: ['a.smith@example.com'], disabled: false,
  }, 'SMTP: is the primary, smtp: the aliases; other address types are ignored')
  t.same(readEntry({ mail: 'bob@example.com', cn: 'Bob' }), { primary: 'bob@example.com', displayName: 'Bob', aliases: [], disabled: false }, 'mail alone, as plain LDAP has it')
  t.same(readEntry({ mail: 'old@example.com', proxyAddresses: 'SMTP:new@example.com' })?.aliases, ['old@example.com'], 'a mail other than the primary is an alias')
  t.equal(readEntry({ mail: 'carol@example.com', userAccountControl: '514' })?.disabled, true, 'ACCOUNTDISABLE')
  t.equal(readEntry({ cn: 'printer' }), null, 'no address: not a recipient')
})

t.test('a sync against OpenLDAP', async (t) => {
  const dir = workDir(t)
  const ldap = await startSlapd(path.join(dir, 'ldap'))
  t.teardown(() => ldap.stop())
  const db = openDatabase(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  const tenants = new Tenants(db)
  const acme = tenants.addOrg('acme')
  tenants.addOrg('globex')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:2600' })
  tenants.addDomain('example.net', { org: 'acme', deliverTo: '127.0.0.1:2600' })
  tenants.addDomain('globex.test', { org: 'globex', deliverTo: '127.0.0.1:2600' })
  tenants.addUser('manual@example.com')
  tenants.addUser('taken@globex.test')
  tenants.addAlias('sales@example.com', 'manual@example.com')

  const admin = await ldap.admin()
  t.teardown(() => admin.unbind())
  await admin.add(`cn=Alice,${people}`, adUser('Alice', { mail: 'alice@example.com', displayName: 'Alice Smith', proxyAddresses: ['SMTP:alice@example.com', 'smtp:a.smith@example.com', 'smtp:alice@example.net'] }))
  await admin.add(`cn=Bob,${people}`, adUser('Bob', { mail: 'bob@example.com' }))
  await admin.add(`cn=Carol,${people}`, adUser('Carol', { mail: 'carol@example.com', userAccountControl: 514 }))
  await admin.add(`cn=Dave,${people}`, adUser('Dave', { mail: 'dave@elsewhere.test' }))
  await admin.add(`cn=Erin,${people}`, adUser('Erin', { mail: 'erin@example.com', proxyAddresses: ['SMTP:erin@example.com', 'smtp:sales@example.com', 'smtp:taken@globex.test'] }))
  await admin.add(`cn=Manual,${people}`, adUser('Manual', { mail: 'manual@example.com', displayName: 'Manu Al' }))

  const sync = new DirectorySync(db)
  const source = { url: ldap.url, bindDn: READER_DN, bindPassword: READER_PASSWORD, baseDn: SUFFIX, filter: AD_FILTER, everyMinutes: 60 }
  sync.setSource(acme.id, source)

  const dry = await sync.sync(acme.id, { apply: false })
  t.same(dry.added.sort(), ['alice@example.com', 'bob@example.com', 'erin@example.com'])
  t.same(users(db, acme.id).map((u) => u.email), ['manual@example.com'], 'a dry run changes nothing')

  let r = await sync.sync(acme.id)
  t.equal(r.found, 6)
  t.equal(r.disabled, 1, 'Carol is disabled')
  t.same(r.added.sort(), ['alice@example.com', 'bob@example.com', 'erin@example.com'])
  t.same(r.aliasesAdded.sort(), ['a.smith@example.com', 'alice@example.net'])
  t.same(r.skipped.map((s) => `${s.address}: ${s.why}`).sort(), [
    "dave@elsewhere.test: not in this organisation's domains",
    'sales@example.com: an alias made by hand points elsewhere',
    "taken@globex.test: not in this organisation's domains",
  ])
  t.same(users(db, acme.id), [
    { email: 'alice@example.com', display_name: 'Alice Smith', from_directory: 1 },
    { email: 'bob@example.com', display_name: 'Bob', from_directory: 1 },
    { email: 'erin@example.com', display_name: 'Erin', from_directory: 1 },
    { email: 'manual@example.com', display_name: 'Manu Al', from_directory: 1 },
  ], 'the directory\'s users are in; the hand-made one it lists is taken over')
  t.same(aliases(db), ['a.smith@example.com>alice@example.com', 'alice@example.net>alice@example.com', 'sales@example.com>manual@example.com'])

  // Bob is disabled, Alice loses an address, Frank joins, Erin is deleted.
  // (Re-made rather than modified: msuser.schema gives these attributes no equality rule, so slapd refuses to change them in place.)
  await admin.del(`cn=Bob,${people}`)
  await admin.add(`cn=Bob,${people}`, adUser('Bob', { mail: 'bob@example.com', userAccountControl: 514 }))
  await admin.del(`cn=Alice,${people}`)
  await admin.add(`cn=Alice,${people}`, adUser('Alice', { mail: 'alice@example.com', displayName: 'Alice Smith', proxyAddresses: ['SMTP:alice@example.com', 'smtp:a.smith@example.com'] }))
  await admin.add(`cn=Frank,${people}`, adUser('Frank', { proxyAddresses: ['SMTP:frank@example.net'] }))
  await admin.del(`cn=Erin,${people}`)
  tenants.addUser('handmade@example.com')
  r = await sync.sync(acme.id)
  t.same(r.added, ['frank@example.net'])
  t.same(r.removed.sort(), ['bob@example.com', 'erin@example.com'], 'disabled and deleted accounts are removed')
  t.same(r.aliasesRemoved, ['alice@example.net'])
  t.same(users(db, acme.id).map((u) => u.email), ['alice@example.com', 'frank@example.net', 'handmade@example.com', 'manual@example.com'], 'a user made by hand that the directory does not list stays')
  t.same(aliases(db), ['a.smith@example.com>alice@example.com', 'sales@example.com>manual@example.com'])
  t.equal(tenants.listUsers('globex').length, 1, 'another organisation is untouched')

  // A base DN with nobody under it: nothing changes, one alert for the run of failures.
  sync.setSource(acme.id, { ...source, baseDn: `ou=empty,${SUFFIX}` })
  await t.rejects(sync.sync(acme.id), /found nobody with an address: nothing was changed/)
  await t.rejects(sync.sync(acme.id), /found nobody/, 'and again on the next attempt')
  t.equal(users(db, acme.id).length, 4, 'nobody was removed')
  t.equal((db.prepare(`SELECT count(*) FROM alerts WHERE kind = 'directory-sync' AND org_id = ?`).pluck().get(acme.id)), 1, 'one alert, for the organisation')
  sync.setSource(acme.id, { ...source, bindPassword: 'wrong' })
  await t.rejects(sync.sync(acme.id), /refused the bind as cn=moat-reader,dc=corp,dc=test: check the DN and password/)
  sync.setSource(acme.id, { ...source, url: 'ldap://127.0.0.1:1' })
  await t.rejects(sync.sync(acme.id), /cannot reach ldap:\/\/127\.0\.0\.1:1/)

  // The job runs a source when its interval has passed, not before.
  sync.setSource(acme.id, source)
  const last = sync.source(acme.id)!.lastAttemptAt!
  t.equal(await sync.syncDue(last + 30 * 60_000), null, 'not within the hour')
  t.same(await sync.syncDue(last + 61 * 60_000), { synced: 1, failed: 0 })
  t.equal(sync.source(acme.id)!.lastError, null, 'a good sync clears the error')
})

t.test('the CLI sets a source and syncs it', async (t) => {
  const dir = workDir(t)
  const ldap = await startSlapd(path.join(dir, 'ldap'))
  t.teardown(() => ldap.stop())
  const admin = await ldap.admin()
  await admin.add(`cn=Alice,${people}`, adUser('Alice', { mail: 'alice@example.com' }))
  await admin.unbind()
  moatOk(dir, ['org', 'add', 'acme'])
  moatOk(dir, ['domain', 'add', 'example.com', '--org', 'acme', '--deliver-to', '127.0.0.1:2600'])
  let r = moat(dir, ['directory', 'set', 'acme', '--url', 'http://x', '--bind-dn', READER_DN, '--password-file', '-', '--base', SUFFIX], `${READER_PASSWORD}\n`)
  t.equal(r.code, 2)
  t.match(r.stderr, /url: ldap:\/\/HOST\[:PORT\] or ldaps:\/\/HOST\[:PORT\]/)
  r = moat(dir, ['directory', 'set', 'acme', '--url', ldap.url, '--bind-dn', READER_DN, '--password-file', '-', '--base', SUFFIX, '--every', '15'], `${READER_PASSWORD}\n`)
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(moatOk(dir, ['directory', 'sync', 'acme', '--json'])), { added: ['alice@example.com'] })
  const shown = moatOk(dir, ['directory', 'show', 'acme', '--json'])
  t.notMatch(shown, READER_PASSWORD, 'the bind password is never shown')
  t.match(JSON.parse(shown), { everyMinutes: 15, lastResult: { added: ['alice@example.com'] } })
})
