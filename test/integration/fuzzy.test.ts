/*
 * moat-fuzzy over real SMTP: a user reports one copy of a campaign, the fingerprints job
 * (a real `moat jobs run`) turns it into fingerprints, and the next copy to someone else
 * arrives with FUZZY_TEXT_WEAK; an admin's word makes it FUZZY_TEXT and quarantines it;
 * revoking the reporters takes it back.
 */
import path from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { campaignCopy } from '../../bench/campaign-variants'
import { recordReports } from '../../appliance/engine/reports'
import { corpusRaw, parseCorpusMessage } from '../../appliance/engine/recipe/corpus'
import { corpusDir, readManifest } from '../../appliance/engine/training'
import { openDatabase } from '../../appliance/db/database'
import { moatOk, provisionAcme, smtpSend, startSink, startSmtp, until, workDir } from '../helpers/appliance'

t.test('a reported campaign is recognised in the next copies, and withdrawn with its reporters', async (t) => {
  const dir = workDir(t)
  const sink = await startSink()
  t.teardown(() => sink.close())
  const data = path.join(dir, 'data')
  provisionAcme(data, sink.port)
  for (const u of ['bob', 'carol', 'dan']) moatOk(data, ['user', 'add', `${u}@example.com`])
  const smtp = await startSmtp(data)
  t.teardown(() => smtp.stop())
  const db = new Database(path.join(data, 'moat.db'), { readonly: true })
  t.teardown(() => db.close())

  const row = readManifest(corpusDir()).find((r) => r.source === 'sa-spam' && r.sha256.startsWith('0'))!
  const original = await parseCorpusMessage(corpusRaw(row), row.source)
  let seed = 0
  const send = async (rcpt: string) => {
    const n = ++seed
    const raw = campaignCopy(original, n, rcpt)
    const r = await smtpSend(smtp.port, { from: 'news@sender.example', to: [rcpt], data: raw })
    t.equal(r.final.code, 250, r.final.text)
    // Each copy goes to someone new: the recipient finds it.
    const m = await until(() => db.prepare(`SELECT id, verdict, symbols FROM messages WHERE rcpt_to LIKE ?`).get(`%${rcpt}%`) as { id: number; verdict: string; symbols: string } | undefined, 10_000, `copy ${n}`)
    return { raw, verdict: m.verdict, fuzzy: (JSON.parse(m.symbols) as { name: string }[]).map((s) => s.name).filter((s) => s.startsWith('FUZZY_')) }
  }

  const first = await send('alice@example.com')
  t.same(first.fuzzy, [], 'the first copy: nothing known yet')

  // Alice reports it, as the archive's "Report spam" records it.
  const rw = openDatabase(path.join(data, 'moat.db'))
  t.teardown(() => rw.close())
  recordReports(rw, [{ raw: first.raw, spam: true }], 'alice@example.com: archive 1')
  t.match(moatOk(data, ['jobs', 'run', 'fingerprints']), /"reports":[1-9]/, 'the job fingerprints the report')
  // The SMTP process loads what changed within a couple of seconds.
  await new Promise((r) => setTimeout(r, 2500))
  const second = await send('bob@example.com')
  t.ok(second.fuzzy.includes('FUZZY_TEXT_WEAK') && !second.fuzzy.includes('FUZZY_TEXT'), `one user's word: a weak match for bob's copy (${second.fuzzy})`)

  // An admin confirms it (moat learn is an admin's word).
  const file = path.join(dir, 'copy.eml')
  require('node:fs').writeFileSync(file, second.raw)
  moatOk(data, ['learn', '--spam', file])
  moatOk(data, ['jobs', 'run', 'fingerprints'])
  await new Promise((r) => setTimeout(r, 2500))
  const third = await send('carol@example.com')
  t.ok(third.fuzzy.includes('FUZZY_TEXT'), `confirmed for carol's copy: ${third.fuzzy}`)
  t.not(third.verdict, 'clean', 'and quarantined')
  t.ok(db.prepare(`SELECT 1 FROM quarantine WHERE rcpt = 'carol@example.com'`).get())

  t.match(moatOk(data, ['fingerprints']), /text\s+spam local\s+2/, 'two reporters on the text, both local')
  t.match(moatOk(data, ['fingerprints', 'revoke', '--reporter', 'admin:cli']), /[1-9]\d* fingerprints? withdrawn/)
  t.match(moatOk(data, ['fingerprints', 'revoke', '--reporter', 'user:alice@example.com']), /[1-9]\d* fingerprints? withdrawn/)
  await new Promise((r) => setTimeout(r, 2500))
  t.same((await send('dan@example.com')).fuzzy, [], 'revoked: the next copy matches nothing')
})
