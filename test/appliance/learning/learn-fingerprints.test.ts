/*
 * The fingerprints job on a real SQLite file: reports with their reporters' trust, surespam
 * auto-learned only behind SpamAssassin's safeguards, outbound mail as ham unless the
 * organisation opted out, each row once; and the synced index follows revocation and expiry.
 */
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { GroupCommitter } from '../../../appliance/db/group-commit'
import { parseMessage } from '../../../appliance/engine/message'
import { recordReports } from '../../../appliance/engine/reports'
import { runJob } from '../../../appliance/jobs/scheduler'
import { TRUST } from '../../../appliance/learning/fingerprint-index'
import { expireFingerprints, FINGERPRINT_DAYS, revokeFingerprints, SyncedIndex } from '../../../appliance/learning/fingerprint-store'
import { fingerprintsOf } from '../../../appliance/learning/fingerprints'
import { learnFingerprints, reporterOf } from '../../../appliance/learning/learn-fingerprints'
import { Accounts } from '../../../appliance/services/accounts'
import { MailStore } from '../../../appliance/services/mail-store'
import { RawStore } from '../../../appliance/services/raw-store'
import { Spool } from '../../../appliance/services/spool'
import { Tenants } from '../../../appliance/services/tenants'
import { rng } from '../../../bench/campaign-variants'

// A text of its own per topic: 40 words drawn from a vocabulary with the topic as the seed.
const VOCABULARY = 'offer save order free shipping gift buyer today member week month price deal club account reward bonus limited exclusive access secure claim winner delivery package invoice update confirm payment card bank refund prize survey ticket'.split(' ')
const words = (topic: string) => {
  const r = rng([...topic].reduce((h, c) => h * 31 + c.charCodeAt(0), 7))
  return [topic, ...Array.from({ length: 40 }, () => VOCABULARY[Math.floor(r() * VOCABULARY.length)])].join(' ')
}
const mail = (subject: string, body: string, extra = '') => Buffer.from(`From: x@sender.example\r\nTo: y@example.com\r\nSubject: ${subject}\r\n${extra}\r\n${body}\r\n`)

t.test('reports, surespam and outbound mail become fingerprints, each once, with the right trust', async (t) => {
  const dir = t.testdir()
  const db = openDatabase(`${dir}/moat.db`)
  t.teardown(() => db.close())
  const spool = new Spool(`${dir}/spool`)
  const raws = new RawStore(db, spool)
  const tenants = new Tenants(db)
  const acme = tenants.addOrg('acme')
  const globex = tenants.addOrg('globex')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: '127.0.0.1:2600' })
  tenants.addUser('alice@example.com')
  tenants.addUser('boss@example.com', { role: 'org_admin' })
  await new Accounts(db).createAdmin('root@moat.test', 'a long enough password')
  tenants.setPolicy('globex', { learn_outbound: 0 })

  t.same(reporterOf(db, 'alice@example.com: archive 4'), { reporter: 'user:alice@example.com', trust: TRUST.user })
  t.same(reporterOf(db, 'boss@example.com via API'), { reporter: 'admin:boss@example.com', trust: TRUST.admin }, 'an organisation admin')
  t.same(reporterOf(db, 'root@moat.test: quarantine 9'), { reporter: 'admin:root@moat.test', trust: TRUST.admin }, 'an appliance admin')
  t.same(reporterOf(db, 'moat learn'), { reporter: 'admin:cli', trust: TRUST.admin })

  const store = new MailStore(db, raws, new GroupCommitter(db))
  const accept = (direction: 'in' | 'out', orgId: number, subject: string, body: string, verdict: 'clean' | 'spam' | 'surespam', score: number, symbols: { name: string; weight: number }[]) =>
    store.accept({
      queueId: subject, direction, raw: mail(subject, body), receivedAt: Date.now(), clientIp: '192.0.2.1', helo: 'h', mailFrom: 'x@sender.example',
      fromHeader: 'x@sender.example', subject, messageIdHeader: null, bodyText: body,
      parts: [{ orgId, verdict, score, symbols, rcpts: [{ address: 'y@example.com', userId: null, action: verdict === 'clean' ? 'deliver' : 'quarantine' }] }],
    })
  const rules = [{ name: 'PHISH_PASSWORD_FORM', weight: 4 }, { name: 'URL_IPFS', weight: 3 }]
  await accept('in', acme.id, 'sure thing', words('watch'), 'surespam', 18, [{ name: 'CLASSIFIER_9999', weight: 8.5 }, ...rules])
  await accept('in', acme.id, 'classifier only', words('pill'), 'surespam', 16, [{ name: 'CLASSIFIER_9999', weight: 8.5 }, { name: 'FUZZY_TEXT', weight: 7 }, { name: 'HTML_FORM', weight: 1.5 }])
  await accept('in', acme.id, 'allow-listed', words('shoe'), 'surespam', 20, [{ name: 'ALLOWLISTED_SENDER', weight: 0 }, { name: 'CLASSIFIER_9999', weight: 8.5 }, ...rules])
  await accept('in', acme.id, 'just over', words('loan'), 'surespam', 12, [{ name: 'CLASSIFIER_99', weight: 6 }, ...rules])
  await accept('out', acme.id, 'our newsletter', words('garden'), 'clean', 0, [])
  await accept('out', acme.id, 'Fwd: look at this spam', words('watch'), 'clean', 0, [])
  await accept('out', globex.id, 'their newsletter', words('boat'), 'clean', 0, [])
  recordReports(db, [{ raw: mail('report', words('crypto')), spam: true }], 'alice@example.com: archive 1')
  recordReports(db, [{ raw: mail('report 2', words('crypto')), spam: true }], 'boss@example.com: quarantine 2')

  const first = await learnFingerprints(db, raws)
  t.ok(first.reports > 0 && first.auto > 0 && first.outbound > 0, JSON.stringify(first))
  const taught = db.prepare(`SELECT DISTINCT reporter, label, trust FROM fuzzy_hashes WHERE kind = 'text' ORDER BY reporter`).all()
  t.same(taught, [
    { reporter: 'admin:boss@example.com', label: 'spam', trust: TRUST.admin },
    { reporter: 'auto', label: 'spam', trust: TRUST.auto },
    { reporter: `outbound:${acme.id}`, label: 'ham', trust: TRUST.user },
    { reporter: 'user:alice@example.com', label: 'spam', trust: TRUST.user },
  ])
  const index = new SyncedIndex(db)
  index.sync()
  const lookup = async (topic: string) => index.index.match(fingerprintsOf(await parseMessage(mail('x', words(topic)))))
  t.match(await lookup('watch'), [{ kind: 'text', reporters: 1 }], 'surespam with rules behind it: learned')
  t.same(await lookup('pill'), [], 'not when only the classifier and fingerprints made it surespam')
  t.same(await lookup('shoe'), [], 'not when an allow-list entry was involved')
  t.same(await lookup('loan'), [], 'not just over the surespam line')
  t.match(await lookup('crypto'), [{ kind: 'text', strength: TRUST.user + TRUST.admin, reporters: 2 }], "alice's and her admin's words add up")
  t.equal(db.prepare(`SELECT count(*) AS n FROM fuzzy_hashes WHERE label = 'ham'`).pluck().get(), 1, "ham from acme's newsletter only: no forward, nothing of globex (opted out)")

  t.same(await learnFingerprints(db, raws), { reports: 0, auto: 0, outbound: 0 }, 'each row once')
  t.equal(await runJob('fingerprints', { db, spool, log: () => {} }), null, 'an idle run has nothing to log')

  t.ok(revokeFingerprints(db, { reporter: 'user:alice@example.com' }) > 0)
  t.ok(index.sync() > 0, 'the index loads the revocation')
  t.match(await lookup('crypto'), [{ strength: TRUST.admin, reporters: 1 }], "alice's word withdrawn, her admin's stands")
  recordReports(db, [{ raw: mail('report again', words('crypto')), spam: true }], 'alice@example.com: archive 3')
  await learnFingerprints(db, raws)
  index.sync()
  t.match(await lookup('crypto'), [{ reporters: 2 }], 'said again, it stands again')

  const later = Date.now() + (FINGERPRINT_DAYS + 1) * 86_400_000
  t.ok(expireFingerprints(db, later).revoked > 0, 'a month on, all are revoked')
  index.sync()
  t.same(await lookup('crypto'), [], 'and the index forgets them')
  t.ok(expireFingerprints(db, later + 8 * 86_400_000).deleted > 0, 'and a week after, deleted')
})
