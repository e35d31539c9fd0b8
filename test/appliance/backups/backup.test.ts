/* Backup and restore on real SQLite files and folders: what goes in, what comes back, what is refused. */
import fs from 'node:fs'
import path from 'node:path'
import * as tar from 'tar'
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { GroupCommitter } from '../../../appliance/db/group-commit'
import { applyPendingRestore, BackupError, createBackup, pendingRestore, stageRestore } from '../../../appliance/backups/backup'
import { MailStore } from '../../../appliance/services/mail-store'
import { RawStore } from '../../../appliance/services/raw-store'
import { Spool } from '../../../appliance/services/spool'
import { Tenants } from '../../../appliance/services/tenants'

const INFO = { version: '1.2.3', hostname: 'mx.acme.test' }

async function appliance(dir: string) {
  const db = openDatabase(path.join(dir, 'moat.db'))
  const tenants = new Tenants(db)
  tenants.addOrg('acme')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:2600' })
  const alice = tenants.addUser('alice@example.com')
  const raws = new RawStore(db, new Spool(path.join(dir, 'spool')))
  const store = new MailStore(db, raws, new GroupCommitter(db))
  // Large enough for the spool, not the database.
  const big = Buffer.from(`Subject: big one\r\n\r\n${'x'.repeat(2 * 1024 * 1024)}\r\n`)
  const r = await store.accept({
    queueId: 'Q1', direction: 'in', raw: big, receivedAt: Date.now(), clientIp: '192.0.2.1', helo: 'h', mailFrom: 'a@b.test', fromHeader: null,
    subject: 'big one', messageIdHeader: null, bodyText: 'big', parts: [{ orgId: alice.org_id, verdict: 'spam', score: 6, symbols: [], rcpts: [{ address: alice.email, userId: alice.id, action: 'quarantine' }] }],
  })
  fs.mkdirSync(path.join(dir, 'tls'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'tls/cert.pem'), 'CERT')
  fs.writeFileSync(path.join(dir, 'tls/key.pem'), 'KEY')
  fs.mkdirSync(path.join(dir, 'haraka/config'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'haraka/config/moat-antivirus.ini'), '[reject]\nvirus=false\n')
  fs.mkdirSync(path.join(dir, 'haraka/queue'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'haraka/queue/1700000000000_0_1_1_ABC_1_host'), 'queued mail')
  return { db, big, rawId: r.rawId }
}

async function entries(file: string): Promise<string[]> {
  const names: string[] = []
  await tar.t({ file, onReadEntry: (e) => names.push(e.path) })
  return names
}

t.test('a backup holds the database, quarantine, spool, TLS, config overrides and the outbound queue; a restore brings them back', async (t) => {
  // One test folder a test (a second t.testdir() call would empty the first).
  const base = t.testdir()
  const [a, b] = [path.join(base, 'a'), path.join(base, 'b')]
  fs.mkdirSync(a)
  const { db, big, rawId } = await appliance(a)
  const file = path.join(base, 'backup.tar.gz')
  const m = await createBackup(db, a, file, INFO)
  db.close()
  t.match(m, { format: 'moat-backup', moat: '1.2.3', hostname: 'mx.acme.test' })
  const names = await entries(file)
  for (const n of ['manifest.json', 'moat.db', 'tls/cert.pem', 'haraka/config/moat-antivirus.ini', 'haraka/queue/1700000000000_0_1_1_ABC_1_host']) t.ok(names.includes(n), n)
  t.ok(names.some((n) => /^spool\/.+/.test(n) && !n.endsWith('/')), 'the spooled message')
  t.notOk(fs.readdirSync(a).some((n) => n.startsWith('.backup-')), 'no work folder left behind')

  // Another appliance, with data of its own.
  const other = openDatabase(path.join(b, 'moat.db'))
  new Tenants(other).addOrg('other')
  other.close()
  t.equal(applyPendingRestore(b, () => {}), false, 'nothing staged: nothing done')
  await stageRestore(b, file)
  t.match(pendingRestore(b), { hostname: 'mx.acme.test' })
  const logged: string[] = []
  t.equal(applyPendingRestore(b, (s) => logged.push(s)), true)
  t.match(logged[0], /restored the backup of mx\.acme\.test/)
  t.equal(pendingRestore(b), null)
  const restored = openDatabase(path.join(b, 'moat.db'))
  t.teardown(() => restored.close())
  t.same(new Tenants(restored).listOrgs().map((o) => o.name), ['acme'])
  t.equal((restored.prepare('SELECT count(*) AS n FROM quarantine').get() as { n: number }).n, 1, 'the quarantine came back')
  t.ok(new RawStore(restored, new Spool(path.join(b, 'spool'))).read(rawId).equals(big), 'the spooled bytes, byte for byte')
  t.equal(fs.readFileSync(path.join(b, 'haraka/config/moat-antivirus.ini'), 'utf8'), '[reject]\nvirus=false\n')
  t.equal(fs.readFileSync(path.join(b, 'tls/key.pem'), 'utf8'), 'KEY')
  const aside = fs.readdirSync(b).find((n) => n.startsWith('pre-restore-'))!
  const old = openDatabase(path.join(b, aside, 'moat.db'))
  t.same(new Tenants(old).listOrgs().map((o) => o.name), ['other'], 'what it replaced is kept')
  old.close()
})

t.test('archives that are not good backups are refused and leave nothing staged', async (t) => {
  const base = t.testdir()
  const [dir, src] = [path.join(base, 'data'), path.join(base, 'src')]
  fs.mkdirSync(dir)
  fs.mkdirSync(src)
  const make = async (name: string, build: (root: string) => string[]) => {
    const root = fs.mkdtempSync(path.join(src, 'r-'))
    const list = build(root)
    const file = path.join(src, name)
    await tar.c({ gzip: true, cwd: root, file, portable: true }, list)
    return file
  }
  const manifest = (root: string, extra: object = {}) => fs.writeFileSync(path.join(root, 'manifest.json'), JSON.stringify({ format: 'moat-backup', moat: '1', schema: 1, created_at: 1, hostname: 'x', ...extra }))
  const goodDb = (root: string, version?: number) => {
    const db = openDatabase(path.join(root, 'moat.db'))
    if (version) db.pragma(`user_version = ${version}`)
    db.close()
    for (const f of ['moat.db-wal', 'moat.db-shm']) fs.rmSync(path.join(root, f), { force: true })
  }
  const garbage = path.join(src, 'garbage.tar.gz')
  fs.writeFileSync(garbage, 'this is not a tar file at all')
  const cases: [string, string, RegExp][] = [
    ['garbage', garbage, /not a backup archive/],
    ['a link out of the data folder', await make('link.tar.gz', (r) => { manifest(r); goodDb(r); fs.mkdirSync(path.join(r, 'tls')); fs.symlinkSync('/etc/passwd', path.join(r, 'tls/cert.pem')); return ['manifest.json', 'moat.db', 'tls'] }), /entries a Moat backup never has: tls\/cert\.pem/],
    ['a file where none belongs', await make('extra.tar.gz', (r) => { manifest(r); goodDb(r); fs.mkdirSync(path.join(r, 'etc')); fs.writeFileSync(path.join(r, 'etc/cron'), 'x'); return ['manifest.json', 'moat.db', 'etc'] }), /never has: etc/],
    ['no manifest', await make('nomanifest.tar.gz', (r) => { goodDb(r); return ['moat.db'] }), /no readable manifest/],
    ['another format', await make('format.tar.gz', (r) => { manifest(r, { format: 'pmg' }); goodDb(r); return ['manifest.json', 'moat.db'] }), /does not say this is a Moat backup/],
    ['a newer schema', await make('newer.tar.gz', (r) => { manifest(r); goodDb(r, 999); return ['manifest.json', 'moat.db'] }), /schema 999, newer than this Moat/],
    ['a damaged database', await make('damaged.tar.gz', (r) => { manifest(r); fs.writeFileSync(path.join(r, 'moat.db'), Buffer.alloc(8192, 7)); return ['manifest.json', 'moat.db'] }), /database (cannot be read|is damaged)/],
  ]
  for (const [what, file, message] of cases) {
    const err = await stageRestore(dir, file).then(() => null, (e: Error) => e)
    t.ok(err instanceof BackupError, `${what}: refused as a bad backup`)
    t.match(err?.message, message, what)
    t.equal(pendingRestore(dir), null, `${what}: nothing staged`)
    t.same(fs.readdirSync(dir).filter((n) => n.startsWith('.restore-')), [], `${what}: no work folder left`)
  }
})
