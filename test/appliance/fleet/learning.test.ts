/*
 * Learning across the fleet on real SQLite files: words go through the console's real signed
 * ingest, come back in signed bundles, and are applied into another appliance's database as
 * its agent applies them. One appliance's word alone moves nothing elsewhere; two do; a
 * withdrawal spreads; another MSP sees nothing; a hostile appliance that floods the console
 * with ham fingerprints is cut off at its hourly budget and makes no ham score a point more.
 */
import t from 'tap'
import { applyBundle } from '../../../appliance/agent/learning'
import { openDatabase } from '../../../appliance/db/database'
import { scanMessage } from '../../../appliance/engine/engine'
import { parseMessage } from '../../../appliance/engine/message'
import { loadDefaultModel } from '../../../appliance/engine/models'
import { corpusRaw } from '../../../appliance/engine/recipe/corpus'
import { corpusDir, readManifest } from '../../../appliance/engine/training'
import { Fleet } from '../../../appliance/fleet/console'
import { FleetError } from '../../../appliance/fleet/errors'
import { HOST_CAP, HOST_WORDS_PER_HOUR, type SharedWord, verifyBundle, VOUCHED } from '../../../appliance/fleet/learning'
import { PROVEN_AFTER, Reputation, STANDING_TTL_MS } from '../../../appliance/fleet/reputation'
import { SyncedIndex, fingerprintKeys } from '../../../appliance/learning/fingerprint-store'
import { fingerprintsOf } from '../../../appliance/learning/fingerprints'
import { fuzzySymbols } from '../../../appliance/engine/filters/fuzzy'
import { Tenants } from '../../../appliance/services/tenants'
import { campaignCopy } from '../../../bench/campaign-variants'
import { enrollTestHost } from '../../helpers/fleet'

const rows = readManifest(corpusDir()).filter((r) => r.source !== 'phishing_pot')

t.test('words of two appliances protect a third; one alone, a withdrawn one or another MSP’s do not', async (t) => {
  const consoleDb = openDatabase(`${t.testdir()}/console.db`)
  t.teardown(() => consoleDb.close())
  const tenants = new Tenants(consoleDb)
  const acme = tenants.addOrg('acme')
  const globex = tenants.addOrg('globex')
  consoleDb.prepare(`INSERT INTO msps (id, name, created_at) VALUES (2, 'other msp', 0)`).run()
  const initech = tenants.addOrg('initech')
  consoleDb.prepare(`UPDATE organisations SET msp_id = 2 WHERE id = ?`).run(initech.id)
  const fleet = new Fleet(consoleDb)
  const a = enrollTestHost(fleet, acme.id, 'mx-a', 'appliance')
  const b = enrollTestHost(fleet, acme.id, 'mx-b', 'appliance')
  const c = enrollTestHost(fleet, globex.id, 'mx-c', 'appliance')
  const x = enrollTestHost(fleet, initech.id, 'mx-x', 'appliance')

  // Appliance B's own database, as its agent writes it.
  const bDb = openDatabase(`${t.testdir()}/b.db`)
  t.teardown(() => bDb.close())
  const bIndex = new SyncedIndex(bDb)
  let bVersion = 0
  const pullB = () => {
    const signed = fleet.learning.signedBundle(b.hostId, bVersion)
    t.ok(verifyBundle(signed.body, signed.signature, signed.publicKey), 'the bundle verifies against the console key')
    const bundle = JSON.parse(signed.body)
    applyBundle(bDb, bundle.words)
    bVersion = bundle.version
    bIndex.sync()
    return bundle.words.length
  }

  const spam = rows.find((r) => r.label === 'spam' && r.source === 'sa-spam' && r.sha256.startsWith('1'))!
  const original = await parseMessage(corpusRaw(spam))
  const copy = async (seed: number) => parseMessage(campaignCopy(original, seed))
  const words = async (seed: number, reporter: string, trust: number): Promise<SharedWord[]> =>
    fingerprintKeys(fingerprintsOf(await copy(seed))).map((k) => ({ ...k, label: 'spam', reporter, trust }))
  const atB = async () => fuzzySymbols(bIndex.index, await copy(99)).map((s) => s.name)

  a.send([{ kind: 'fingerprints', at: Date.now(), data: { words: await words(1, 'u-alice', 3) } }])
  t.ok(pullB() > 0, 'B receives what A learned')
  const relayed = bDb.prepare(`SELECT DISTINCT reporter, trust, origin FROM fuzzy_hashes`).all()
  t.same(relayed, [{ reporter: `fleet:${a.hostId}`, trust: HOST_CAP, origin: 'fleet' }], "as A's word, capped, whatever A claimed")
  t.same(await atB(), [], 'one appliance alone moves nothing at B')

  c.send([{ kind: 'fingerprints', at: Date.now(), data: { words: await words(2, 'u-carol', 1) } }])
  pullB()
  t.ok((await atB()).includes('FUZZY_TEXT'), 'with a second appliance, B recognises its own copy')

  t.equal(fleet.learning.withdraw({ hostId: a.hostId }, [1], 'msp admin'), (await words(1, '', 1)).length, "the MSP withdraws A's words")
  a.send([{ kind: 'fingerprints', at: Date.now(), data: { words: await words(1, 'u-alice', 3) } }])
  pullB()
  t.same(await atB(), [], 'withdrawn at B too, and A saying it again does not bring it back')

  const xBundle = JSON.parse(fleet.learning.signedBundle(x.hostId, 0).body)
  t.same(xBundle.words, [], "another MSP's appliance gets none of it")

  const tampered = fleet.learning.signedBundle(b.hostId, 0)
  t.notOk(verifyBundle(tampered.body.replace(/"trust":\d/, '"trust":3'), tampered.signature, tampered.publicKey), 'a changed bundle does not verify')
})

t.test('bad words are refused whole; a flood is cut at the hourly budget and makes no ham score more', async (t) => {
  const consoleDb = openDatabase(`${t.testdir()}/console.db`)
  t.teardown(() => consoleDb.close())
  const org = new Tenants(consoleDb).addOrg('acme')
  const fleet = new Fleet(consoleDb)
  const hostile = enrollTestHost(fleet, org.id, 'mx-evil', 'appliance')
  const honest = enrollTestHost(fleet, org.id, 'mx-b', 'appliance')
  const word = { kind: 'text', key: 'ab'.repeat(128), label: 'spam', reporter: 'r1', trust: 1 }

  const refused = (data: unknown) => {
    try {
      hostile.send([{ kind: 'fingerprints', at: Date.now(), data }])
      return null
    } catch (err) {
      return err instanceof FleetError ? `${err.status} ${err.message}` : String(err)
    }
  }
  t.match(refused({ words: [{ ...word, key: 'not hex' }] }), /^400 fingerprints: word 0: not a text fingerprint/)
  t.match(refused({ words: [{ ...word, trust: 9 }] }), /^400 .*trust must be 0 to 3/)
  t.match(refused({ words: [{ ...word, reporter: 'alice@example.com' }] }), /^400 .*reporter must be a short hash/, 'an address is not a reporter hash')
  t.match(refused({ words: 'all of them' }), /^400 fingerprints: words must be an array/)
  t.match(refused({ words: Array.from({ length: 2001 }, () => word) }), /^413 /)
  t.equal(consoleDb.prepare(`SELECT count(*) FROM fleet_fingerprints`).pluck().get(), 0, 'nothing of a refused report is kept')

  // The hostile appliance says every ham of the corpus is spam, several reporters at admin trust.
  const ham = rows.filter((r) => r.label === 'ham').filter((_, i) => i % 2 === 0)
  const hamMessages = await Promise.all(ham.map(async (r) => ({ raw: corpusRaw(r), parsed: await parseMessage(corpusRaw(r)) })))
  const poison: SharedWord[] = []
  for (const m of hamMessages) for (const k of fingerprintKeys(fingerprintsOf(m.parsed))) for (const reporter of ['e1', 'e2', 'e3']) poison.push({ ...k, label: 'spam', reporter, trust: 3 })
  for (let i = 0; i < poison.length; i += 2000) hostile.send([{ kind: 'fingerprints', at: Date.now(), data: { words: poison.slice(i, i + 2000) } }])
  const taken = consoleDb.prepare(`SELECT count(*) FROM fleet_fingerprints WHERE host_id = ?`).pluck().get(hostile.hostId) as number
  t.ok(taken <= HOST_WORDS_PER_HOUR, `at most the hourly budget taken: ${taken} fingerprints`)
  t.ok((consoleDb.prepare(`SELECT learning_refused FROM fleet_hosts WHERE id = ?`).pluck().get(hostile.hostId) as number) > 0, 'the rest refused, and counted for the MSP')

  const bDb = openDatabase(`${t.testdir()}/b.db`)
  t.teardown(() => bDb.close())
  let version = 0
  for (;;) {
    const bundle = fleet.learning.since(honest.hostId, version)
    applyBundle(bDb, bundle.words)
    if (bundle.version === version) break
    version = bundle.version
  }
  const index = new SyncedIndex(bDb)
  index.sync()
  t.ok(index.index.size > 1000, `the honest appliance holds the hostile words (${index.index.size})`)
  const model = loadDefaultModel().model
  let flaggedWithout = 0, flaggedWith = 0, fuzzy = 0
  for (const m of hamMessages) {
    const plain = await scanMessage(m.raw, { model })
    const poisoned = await scanMessage(m.raw, { model, fingerprints: index.index })
    if (plain.verdict !== 'clean') flaggedWithout++
    if (poisoned.verdict !== 'clean') flaggedWith++
    if (poisoned.symbols.some((s) => s.name.startsWith('FUZZY_'))) fuzzy++
  }
  t.equal(fuzzy, 0, `no ham of ${hamMessages.length} got a FUZZY symbol from one appliance's words`)
  t.equal(flaggedWith, flaggedWithout, `ham flagged: ${flaggedWith} with the poison, ${flaggedWithout} without`)
})

t.test('a withdrawn word takes back only its own label', async (t) => {
  // One appliance said both "spam" and "not spam" of one fingerprint; it withdraws the spam word.
  const db = openDatabase(`${t.testdir()}/a.db`)
  t.teardown(() => db.close())
  const key = 'ab'.repeat(16)
  applyBundle(db, [
    { kind: 'attachment', key, label: 'spam', host: 7, trust: 2 },
    { kind: 'attachment', key, label: 'ham', host: 7, trust: 2 },
  ])
  applyBundle(db, [{ kind: 'attachment', key, label: 'spam', host: 7, trust: 0 }])
  const live = db.prepare(`SELECT label FROM fuzzy_hashes WHERE key = ? AND revoked_at IS NULL`).pluck().all(key)
  t.same(live, ['ham'], 'the ham word stays')
})

t.test('an appliance proven right before is vouched for: its word counts alone, weakly, until it is contradicted', async (t) => {
  const consoleDb = openDatabase(`${t.testdir()}/console.db`)
  t.teardown(() => consoleDb.close())
  const org = new Tenants(consoleDb).addOrg('acme')
  const fleet = new Fleet(consoleDb)
  const [a, b, c, d] = ['mx-a', 'mx-b', 'mx-c', 'mx-d'].map((name) => enrollTestHost(fleet, org.id, name, 'appliance'))
  const dDb = openDatabase(`${t.testdir()}/d.db`)
  t.teardown(() => dDb.close())
  const dIndex = new SyncedIndex(dDb)
  let dVersion = 0
  const pullD = () => {
    for (;;) {
      const bundle = fleet.learning.since(d.hostId, dVersion)
      applyBundle(dDb, bundle.words)
      if (bundle.version === dVersion) break
      dVersion = bundle.version
    }
    dIndex.sync()
  }
  const url = (n: number) => n.toString(16).padStart(32, '0')
  const say = (host: typeof a, keys: string[], label: 'spam' | 'ham', reporter: string) =>
    host.send([{ kind: 'fingerprints', at: Date.now(), data: { words: keys.map((key) => ({ kind: 'url', key, label, reporter, trust: 1 })) } }])

  // A earns its standing: B reports the same campaigns' links after A did.
  const earned = Array.from({ length: PROVEN_AFTER }, (_, i) => url(i + 1))
  say(a, earned.slice(0, PROVEN_AFTER - 1), 'spam', 'u1')
  say(b, earned.slice(0, PROVEN_AFTER - 1), 'spam', 'u2')
  t.match(fleet.learning.standing(a.hostId), { corroborated: PROVEN_AFTER - 1, proven: false }, 'one corroboration short')

  const spam = rows.find((r) => r.label === 'spam' && r.source === 'sa-spam' && r.sha256.startsWith('2'))!
  const original = await parseMessage(corpusRaw(spam))
  const campaign = async (seed: number) => fingerprintKeys(fingerprintsOf(await parseMessage(campaignCopy(original, seed))))
  const fuzzyAtD = async () => fuzzySymbols(dIndex.index, await parseMessage(campaignCopy(original, 99))).map((s) => s.name)
  a.send([{ kind: 'fingerprints', at: Date.now(), data: { words: (await campaign(1)).map((k) => ({ ...k, label: 'spam', reporter: 'u1', trust: 1 })) } }])
  pullD()
  t.same(await fuzzyAtD(), [], 'not yet proven: its lone word moves nothing at D')

  say(a, [earned.at(-1)!], 'spam', 'u1')
  say(b, [earned.at(-1)!], 'spam', 'u2')
  t.match(fleet.learning.standing(a.hostId), { corroborated: PROVEN_AFTER, contradicted: 0, proven: true })
  a.send([{ kind: 'fingerprints', at: Date.now(), data: { words: (await campaign(2)).map((k) => ({ ...k, label: 'spam', reporter: 'u3', trust: 1 })) } }])
  pullD()
  t.equal(dDb.prepare(`SELECT max(trust) FROM fuzzy_hashes WHERE reporter = ?`).pluck().get(`fleet:${a.hostId}`), VOUCHED, 'relayed as vouched for')
  const alone = await fuzzyAtD()
  t.ok(alone.includes('FUZZY_TEXT_WEAK'), `proven: its first report of a new campaign protects D at once (${alone})`)
  t.notOk(alone.some((n) => !n.endsWith('_WEAK')), 'but only as weak evidence, never a confirmed match on its word alone')

  // C says one of A's campaigns is wanted mail: A's standing is gone, and with it the vouching.
  say(c, [earned[0]], 'ham', 'u4')
  t.match(fleet.learning.standing(a.hostId), { contradicted: 1, proven: false })
  pullD()
  t.equal(dDb.prepare(`SELECT max(trust) FROM fuzzy_hashes WHERE reporter = ? AND revoked_at IS NULL`).pluck().get(`fleet:${a.hostId}`), 1, "A's words are relayed again with its users' own trust (1), no longer vouched for")
  t.same(await fuzzyAtD(), [], 'so its lone word moves nothing at D again')
})

t.test("a host's standing is counted at most once a minute, unless asked afresh", async (t) => {
  const db = openDatabase(`${t.testdir()}/console.db`)
  t.teardown(() => db.close())
  const org = new Tenants(db).addOrg('acme')
  const fleet = new Fleet(db)
  const [a, b] = ['mx-a', 'mx-b'].map((name) => enrollTestHost(fleet, org.id, name, 'appliance'))
  const keys = Array.from({ length: PROVEN_AFTER + 1 }, (_, i) => (i + 1).toString(16).padStart(32, '0'))
  for (const host of [a, b]) host.send([{ kind: 'fingerprints', at: Date.now(), data: { words: keys.map((key) => ({ kind: 'url', key, label: 'spam', reporter: 'u', trust: 1 })) } }])
  const reputation = new Reputation(db)
  const t0 = 1_000_000
  t.equal(reputation.of(a.hostId, false, t0).proven, true)
  // The MSP withdraws two of them behind the cache's back.
  db.prepare(`UPDATE fleet_fingerprints SET withdrawn_by = 'msp', trust = 0 WHERE host_id = ? AND key IN (?, ?)`).run(a.hostId, keys[0], keys[1])
  t.equal(reputation.of(a.hostId, false, t0 + 30_000).proven, true, 'within the minute: the counted standing')
  t.equal(reputation.of(a.hostId, false, t0 + STANDING_TTL_MS).proven, false, 'after it: counted again')
  t.equal(reputation.of(a.hostId, true, t0).proven, false, 'and afresh whenever asked')
})
