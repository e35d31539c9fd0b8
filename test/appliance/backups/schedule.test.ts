/*
 * The nightly backup against Debian's OpenSSH server on loopback: copies kept locally and
 * off the box, the oldest pruned in both places, the host key pinned, failures and missing
 * backups raised as alerts, and a restore from each place giving the data back.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { applyPendingRestore } from '../../../appliance/backups/backup'
import { BackupSchedule, MISSING_MS } from '../../../appliance/backups/schedule'
import { openDatabase, type Db } from '../../../appliance/db/database'
import { Tenants } from '../../../appliance/services/tenants'
import { moat, workDir } from '../../helpers/appliance'
import { startSshd } from '../../helpers/sshd'

const orgs = (db: Db) => (db.prepare('SELECT name FROM organisations ORDER BY name').all() as { name: string }[]).map((r) => r.name)
const alerts = (db: Db, kind: string) => (db.prepare('SELECT message FROM alerts WHERE kind = ?').all(kind) as { message: string }[]).map((r) => r.message)

t.test('nightly backups go to a local folder and over SFTP, N kept, each restorable', async (t) => {
  const dir = workDir(t)
  const dataDir = path.join(dir, 'data')
  fs.mkdirSync(dataDir)
  let db = openDatabase(path.join(dataDir, 'moat.db'))
  const tenants = new Tenants(db)
  tenants.addOrg('acme')
  const schedule = () => new BackupSchedule({ db, dataDir, version: '9.9.9', hostname: 'mx.acme.test' })
  const sshd = await startSshd(path.join(dir, 'sshd'), [schedule().publicKey()])
  t.teardown(() => sshd.stop())
  const remoteDir = path.join(dir, 'offsite')
  fs.mkdirSync(remoteDir)
  // Another appliance's backup in the same folder: never pruned by this one.
  fs.writeFileSync(path.join(remoteDir, 'moat-backup-mx.other.test-20260101T000000.000Z.tar.gz'), 'not ours')

  const target = { host: '127.0.0.1', port: sshd.port, username: sshd.user, path: remoteDir, hostKey: null }
  const pinned = await schedule().connectTarget(target)
  t.equal(pinned.hostKey, sshd.fingerprint, 'the pinned host key is the one ssh-keygen -lf prints for the server')
  schedule().setPolicy({ ...schedule().policy(), keep: 2, sftp: pinned })

  const made: string[] = []
  for (const org of ['beta', 'gamma', 'delta']) {
    tenants.addOrg(org)
    const r = await schedule().run()
    t.notOk('error' in r, `backup after adding ${org}: ${'error' in r ? r.error : 'ok'}`)
    if ('file' in r) {
      t.ok(r.copiedOff, 'copied over SFTP')
      made.push(path.basename(r.file))
    }
  }
  const local = schedule().listLocal().map((b) => b.name)
  t.same(local, [made[2], made[1]], 'the two newest are kept locally, newest first')
  const remote = fs.readdirSync(remoteDir).sort()
  t.same(remote, ['moat-backup-mx.other.test-20260101T000000.000Z.tar.gz', made[1], made[2]].sort(), 'the two newest are kept on the server; the other appliance\'s file is left alone; no .partial is left')
  t.equal(fs.statSync(path.join(remoteDir, made[2])).size, fs.statSync(path.join(schedule().localDir(), made[2])).size, 'the copy is whole')
  t.same((await schedule().listRemote()).map((b) => b.name).slice(0, 2), [made[2], made[1]], 'the listing over SFTP shows them')
  const status = schedule().status()
  t.equal(status.error, null)
  t.equal(status.lastFile, made[2])

  // Restore from the server: the middle backup (acme, beta, gamma) comes back, delta goes.
  tenants.addOrg('epsilon')
  let m = await schedule().stage('sftp', made[1])
  t.equal(m.hostname, 'mx.acme.test')
  db.close()
  t.ok(applyPendingRestore(dataDir, () => undefined), 'the staged restore is applied at the next start')
  db = openDatabase(path.join(dataDir, 'moat.db'))
  t.same(orgs(db), ['acme', 'beta', 'gamma'], 'restored from the SFTP copy')
  t.same(schedule().listLocal().map((b) => b.name), [made[2], made[1]], 'a restore keeps the local backups')

  // Restore from the local folder: the newest (with delta).
  m = await schedule().stage('local', made[2])
  db.close()
  applyPendingRestore(dataDir, () => undefined)
  db = openDatabase(path.join(dataDir, 'moat.db'))
  t.same(orgs(db), ['acme', 'beta', 'delta', 'gamma'], 'restored from the local copy')
  t.ok(schedule().policy().sftp, 'the restored appliance still has its SFTP target and key')
  await t.rejects(schedule().stage('local', '../moat.db'), /not the name of a Moat backup/, 'only kept backups by name')

  // The server is down: the local copy is still made, one alert for the run of failures.
  await sshd.stop()
  const down = await schedule().run()
  t.match('error' in down ? down.error : '', /cannot reach 127\.0\.0\.1.*the local backup moat-backup-mx\.acme\.test-.* was made/, 'the error says what failed and what was kept')
  await schedule().run()
  t.equal(alerts(db, 'backup-failed').length, 1, 'one alert for two failures in a row')
  t.equal(schedule().listLocal().length, 2, 'local backups are made and pruned even when the copy off the box fails')
  await sshd.start()
  const back = await schedule().run()
  t.notOk('error' in back, 'works again once the server is back')
  t.equal(schedule().status().error, null)

  // A server presenting another key is refused: backups never go to an impostor.
  schedule().setPolicy({ ...schedule().policy(), sftp: { ...pinned, hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } })
  const impostor = await schedule().run()
  t.match('error' in impostor ? impostor.error : '', /presented host key SHA256:.*not the pinned/)
  t.equal(alerts(db, 'backup-failed').length, 2, 'a new run of failures is a new alert')

  // A key the server does not know: the message says what to do.
  schedule().setPolicy({ ...schedule().policy(), sftp: pinned })
  fs.writeFileSync(path.join(dir, 'sshd', 'authorized_keys'), '')
  await t.rejects(schedule().connectTarget(pinned), /refused the appliance's key: add it to that account's authorized_keys/)
  db.close()
})

t.test('when a backup is due, and when a missing one is an alert', async (t) => {
  const dir = workDir(t)
  const db = openDatabase(path.join(dir, 'moat.db'))
  t.teardown(() => db.close())
  const s = new BackupSchedule({ db, dataDir: dir, version: '9.9.9', hostname: 'mx.acme.test' })
  const at = (day: number, hh: number, mm = 0) => new Date(2026, 11, day, hh, mm).getTime()
  t.equal(s.policy().time, '02:30', 'on by default, at night')
  t.equal(s.policy().enabled, true)
  // First start in the afternoon: not due before the first night.
  t.equal(await s.tick(at(7, 15)), null, 'nothing to do on the first start')
  t.notOk(s.isDue(at(7, 23, 59)))
  t.ok(s.isDue(at(8, 2, 30)), 'due at the first night\'s time')
  t.ok(s.isDue(at(8, 9)), 'still due in the morning when the appliance was off at night')
  const r = await s.tick(at(8, 2, 35))
  t.ok(r && 'file' in r, 'the tick makes it')
  t.notOk(s.isDue(Date.now() + 60_000), 'not due again the same night')
  t.equal(s.listLocal().length, 1)
  t.equal(fs.statSync(s.localDir()).mode & 0o777, 0o700, 'the backup folder is the appliance\'s alone')

  // Missing: the schedule is on but nothing good for a day and a half.
  s.setPolicy({ ...s.policy(), enabled: false })
  t.notOk(s.isDue(Date.now() + 2 * 86_400_000), 'off: never due')
  await s.tick(Date.now() + 3 * 86_400_000)
  t.equal(alerts(db, 'backup-missing').length, 0, 'off: no missing alert')
  s.setPolicy({ ...s.policy(), enabled: true })
  const last = s.status().lastOkAt as number
  // Ticks whose backups fail (the folder cannot be made: a file is in the way) leave the last good one behind.
  fs.writeFileSync(path.join(dir, 'a-file'), '')
  s.setPolicy({ ...s.policy(), localDir: path.join(dir, 'a-file', 'backups') })
  await s.tick(last + MISSING_MS - 60_000)
  t.equal(alerts(db, 'backup-missing').length, 0, 'not yet missing')
  t.equal(alerts(db, 'backup-failed').length, 1, 'the failed attempt is an alert')
  await s.tick(last + MISSING_MS + 60_000)
  await s.tick(last + MISSING_MS + 3_600_000)
  t.same(alerts(db, 'backup-missing'), [`No backup has been made since ${new Date(last).toISOString()}.`], 'one missing alert, saying since when')
})

t.test('the CLI checks what it is given', async (t) => {
  const dir = workDir(t)
  let r = moat(dir, ['backup', 'schedule', '--keep', '0'])
  t.equal(r.code, 2)
  t.match(r.stderr, /keep: keep at least one/)
  r = moat(dir, ['backup', 'schedule', '--time', '25:00'])
  t.match(r.stderr, /time: a time of day as HH:MM/)
  r = moat(dir, ['backup', 'sftp', 'backup.example.net:/srv'])
  t.match(r.stderr, /USER@HOST\[:PORT\]:\/PATH/)
  r = moat(dir, ['backup', 'sftp', 'moat@127.0.0.1:1:/srv'])
  t.equal(r.code, 1)
  t.match(r.stderr, /cannot reach 127\.0\.0\.1:1 over SFTP/, 'an unreachable target is a clear error, and is not saved')
  r = moat(dir, ['backup', 'schedule', '--time', '01:15', '--keep', '3', '--json'])
  t.equal(r.code, 0, r.stderr)
  t.match(JSON.parse(r.stdout).policy, { enabled: true, time: '01:15', keep: 3, sftp: null })
  t.match(moat(dir, ['backup', 'key']).stdout, /^ssh-ed25519 AAAA\S+ moat-backup\n$/)
})
