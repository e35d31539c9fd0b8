/*
 * What ships is made by one recipe: the default model and the weights table fitted for it.
 * These tests fail when the two part, when the recipe learns from a source it must not, when
 * list giveaways reach the model, and when a site's own model no longer fits the table.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import weightsTable from '../../../appliance/engine/weights.json'
import { scanMessage } from '../../../appliance/engine/engine'
import { BUCKETS } from '../../../appliance/engine/filters/classifier'
import { deserialiseLogistic, logitFeatures } from '../../../appliance/engine/logistic'
import { parseMessage } from '../../../appliance/engine/message'
import { DEFAULT_MODEL_PATH, loadDefaultModel } from '../../../appliance/engine/models'
import { fitPlatt } from '../../../appliance/engine/recipe/calibration'
import { LIST_SOURCES, loadSamples, parseCorpusMessage, corpusRaw } from '../../../appliance/engine/recipe/corpus'
import { buildDefault, DEFAULT_RECIPE, NEVER_SHIPPED, type WeightsTable } from '../../../appliance/engine/recipe/default-recipe'
import { listSource, stripListGiveaways } from '../../../appliance/engine/recipe/list-giveaways'
import { corpusDir, readManifest, trainOnFiles } from '../../../appliance/engine/training'

const table = weightsTable as WeightsTable

t.test('the shipped weights were fitted for the shipped model, by the default recipe', async (t) => {
  const file = fs.readFileSync(DEFAULT_MODEL_PATH)
  const recipe = table.recipe
  t.ok(recipe, 'weights.json records the recipe it was fitted by')
  t.equal(recipe!.modelSha256, crypto.createHash('sha256').update(file).digest('hex'), 'weights.json names the sha256 of the model file that ships (rebuild both with npm run train:default)')
  t.equal(recipe!.name, DEFAULT_RECIPE.name, 'fitted by the recipe this code builds')
  const model = deserialiseLogistic(file)
  t.same(model.provenance?.recipe, recipe!.name, 'the model records the same recipe')
  t.same(model.provenance?.trainingSetSha256, recipe!.trainingSetSha256, 'and the same training set')
  t.same(model.provenance?.sources, recipe!.sources, 'and the same sources')
  t.notSame(model.calibration, { a: 1, b: 0 }, 'the shipped model carries its calibration')
  for (const never of NEVER_SHIPPED) t.notOk(recipe!.sources.includes(never), `${never} is not among the sources`)
  for (const source of recipe!.sources) t.ok(DEFAULT_RECIPE.sources.includes(source), `${source} is an allowed source`)
  for (const list of LIST_SOURCES) t.ok(recipe!.sources.includes(list), `the list mail of ${list} is trained on`)
})

t.test('short notes between people are clean with what ships', async (t) => {
  // A source weighting once taught the model that a person's name in From is spam; these
  // are the notes that caught it (the integration tests send the first).
  const notes: [string, string, string][] = [
    ['Bob <bob@sender.test>', 'spf-pass', 'Hello Alice, the minutes from today.'],
    ['Carol Smith <carol@smith-consulting.example>', 'Lunch?', 'Are you free for lunch at noon tomorrow?'],
    ['Dave <dave@mail.example.org>', 'Re: report', 'Thanks, got it. I will read it tonight.'],
    ['Erin Wu <erin.wu@example.net>', 'invoice 2231', 'Could you send me the corrected invoice by Friday? Thanks, Erin'],
  ]
  for (const [from, subject, body] of notes) {
    const raw = Buffer.from(`From: ${from}\r\nTo: alice@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.length}@x.example>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}\r\n`)
    const r = await scanMessage(raw, { model: loadDefaultModel().model })
    t.equal(r.verdict, 'clean', `${from}: "${body}" (${r.score}: ${r.symbols.map((x) => x.name).join(' ')})`)
  }
})

t.test('the recipe makes both files together, and records where they came from', async (t) => {
  // A tenth of the allowed mail: the recipe's shape, not its accuracy.
  const built = await buildDefault(corpusDir(), { filter: (_s, i) => i % 10 === 0, now: new Date('2026-12-07T00:00:00Z') })
  const r = built.weights.recipe!
  t.equal(r.modelSha256, crypto.createHash('sha256').update(built.modelFile).digest('hex'))
  t.ok(r.ham > 300 && r.spam > 100, `${r.ham} ham, ${r.spam} spam`)
  t.notOk(built.samples.some((s) => NEVER_SHIPPED.includes(s.source)), 'phishing_pot never reaches the recipe')
  const model = deserialiseLogistic(built.modelFile)
  t.equal(model.provenance?.trainingSetSha256, r.trainingSetSha256)
  for (const name of Object.keys(table.weights)) t.ok(name in built.weights.weights, `${name} keeps a weight`)
  // The buckets keep their order: a surer classifier never weighs less.
  const w = built.weights.weights
  t.ok(w.CLASSIFIER_9999 >= w.CLASSIFIER_99 && w.CLASSIFIER_99 >= w.CLASSIFIER_90 && w.CLASSIFIER_90 >= w.CLASSIFIER_50, 'buckets in order')
  t.ok(w.CLASSIFIER_9999 < 10, 'the classifier alone never reaches surespam')
  // Where spam is the likelier label the classifier excuses nothing, in what ships too.
  for (const weights of [w, table.weights as Record<string, number>])
    for (const [min, name] of BUCKETS) if (min >= 0.5) t.ok(weights[name] >= 0, `${name} (p ≥ ${min}) weighs ${weights[name]}, not less than 0`)
})

t.test('calibration: Platt scaling recovers a known slope and offset', async (t) => {
  // Scores whose true log-odds are 0.5·z − 1: the fit must find about that.
  const logits: number[] = []
  const spam: boolean[] = []
  // mulberry32: consecutive draws independent enough that score and label are not tied.
  let seed = 7
  const rnd = () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
  for (let i = 0; i < 20000; i++) {
    const z = rnd() * 16 - 8
    logits.push(z)
    spam.push(rnd() < 1 / (1 + Math.exp(-(0.5 * z - 1))))
  }
  const c = fitPlatt(logits, spam)
  t.ok(Math.abs(c.a - 0.5) < 0.05, `slope ${c.a.toFixed(3)}`)
  // Ham and spam are weighed alike, so the offset also absorbs the class balance.
  const balance = Math.log(spam.filter((s) => !s).length / spam.filter(Boolean).length)
  t.ok(Math.abs(c.b - (-1 + balance)) < 0.15, `offset ${c.b.toFixed(3)}, want ${(-1 + balance).toFixed(3)}`)
  t.same(fitPlatt([1, 2], [true, true]), { a: 1, b: 0 }, 'one class only: identity')
  const separated = fitPlatt([-3, -2, -1, 1, 2, 3], [false, false, false, true, true, true])
  t.ok(separated.a > 0 && separated.a < 5, `perfectly separated scores keep a sane slope (${separated.a.toFixed(2)})`)
})

t.test("a site's own model, trained on a small part of the corpus, still fits the shipped weights", async (t) => {
  const dir = corpusDir()
  const rows = readManifest(dir).filter((r) => DEFAULT_RECIPE.sources.includes(r.source))
  // A small site: 250 ham and 250 spam of its own, from the sources' first fold.
  const train = [...rows.filter((r) => r.label === 'ham'), ...rows.filter((r) => r.label === 'spam')].filter((r, i) => parseInt(r.sha256.slice(0, 8), 16) % 5 === 0 && i % 2 === 0)
  const ham = train.filter((r) => r.label === 'ham').slice(0, 250)
  const spam = train.filter((r) => r.label === 'spam').slice(0, 250)
  const model = await trainOnFiles([...ham, ...spam].map((r) => ({ file: path.join(dir, r.path), spam: r.label === 'spam' })))
  t.notSame(model.calibration, { a: 1, b: 0 }, 'the site model is calibrated on its own held-out scores')
  t.equal(model.provenance?.recipe, 'moat train')
  // Mail it never saw, scored with the shipped weights table.
  const heldOut = rows.filter((r) => parseInt(r.sha256.slice(0, 8), 16) % 5 === 3)
  const testHam = heldOut.filter((r) => r.label === 'ham').slice(0, 400)
  const testSpam = heldOut.filter((r) => r.label === 'spam').slice(0, 200)
  let hamFlagged = 0
  let spamCaught = 0
  for (const r of testHam) if ((await scanMessage(corpusRaw(r, dir), { model })).verdict !== 'clean') hamFlagged++
  for (const r of testSpam) if ((await scanMessage(corpusRaw(r, dir), { model })).verdict !== 'clean') spamCaught++
  t.comment(`site model (${ham.length} ham, ${spam.length} spam): ham flagged ${hamFlagged}/${testHam.length}, spam caught ${spamCaught}/${testSpam.length}`)
  t.ok(hamFlagged <= testHam.length * 0.01, 'at most 1 % of ham flagged')
  t.ok(spamCaught >= testSpam.length * 0.7, 'most spam caught')
})

t.test('list giveaways are removed before list mail teaches the model', async (t) => {
  const list = listSource('usrp-users.lists.ettus.com')
  const raw = Buffer.from(
    [
      'Received: from mm2.emwd.com (mm2.emwd.com [172.104.30.75]) by archive.example for <lists+usrp@lfdr.de>; Mon, 1 Jan 2024 10:00:00 +0000',
      'Received: from mail.example.org (mail.example.org [192.0.2.1]) by mm2.emwd.com; Mon, 1 Jan 2024 09:59:00 +0000',
      'From: Jane Doe via USRP-users <usrp-users@lists.ettus.com>',
      'Reply-To: Jane Doe <jane@example.org>',
      'To: usrp-users@lists.ettus.com',
      'Subject: Re: [USRP-users] B210 clock drift',
      'List-Id: <usrp-users.lists.ettus.com>',
      'List-Unsubscribe: <mailto:usrp-users-leave@lists.ettus.com>',
      'Precedence: list',
      'X-Mailman-Version: 3.3.3',
      'Message-ID: <1@example.org>',
      '',
      'The drift goes away with an external reference.',
      '',
      '> Quoted question',
      '> _______________________________________________',
      '> USRP-users mailing list -- usrp-users@lists.ettus.com',
      '',
      '_______________________________________________',
      'USRP-users mailing list -- usrp-users@lists.ettus.com',
      'To unsubscribe send an email to usrp-users-leave@lists.ettus.com',
      'http://lists.ettus.com/mailman/listinfo/usrp-users_lists.ettus.com',
      '',
    ].join('\r\n'),
  )
  const msg = stripListGiveaways(await parseMessage(raw), list)
  t.equal(msg.subject, 'Re: B210 clock drift', 'the [list] tag is gone')
  t.same(msg.from, { name: 'Jane Doe', address: 'jane@example.org' }, 'the author is back in From')
  for (const h of ['list-id', 'list-unsubscribe', 'precedence', 'x-mailman-version']) t.notOk(msg.headers.has(h), `${h} is gone`)
  t.same(msg.headers.get('received')?.length, 1, "the list's and the archive's hops are gone, the author's stays")
  t.notMatch(msg.text, /mailing list|unsubscribe|listinfo/i, 'the footer and its quoted copy are gone')
  t.match(msg.text, /external reference/, 'the text stays')
  t.same(msg.urls, [], "the footer's links are gone")

  // On the real list mail of the corpus: no tags, no list headers, no "via" senders left.
  const dir = corpusDir()
  const rows = readManifest(dir).filter((r) => LIST_SOURCES.includes(r.source)).filter((_r, i) => i % 7 === 0)
  let tagged = 0
  let listHeaders = 0
  let footers = 0
  for (const r of rows) {
    const p = await parseCorpusMessage(corpusRaw(r, dir), r.source)
    if (p.subject.toLowerCase().includes(`[${listSource(r.source).name}]`)) tagged++
    if ([...p.headers.keys()].some((k) => /^(list-|x-mailing-list|precedence)/.test(k))) listHeaders++
    if (/^(?!>).*You received this message because you are subscribed to the Google Groups|^_{20,}\s*\n.*mailing list/m.test(p.text)) footers++
  }
  t.comment(`${rows.length} list messages`)
  t.equal(tagged, 0, 'no [list] tags left')
  t.equal(listHeaders, 0, 'no list headers left')
  t.equal(footers, 0, 'no footers left')
})

t.test('loadSamples strips list mail and leaves other sources as they are', async (t) => {
  const samples = await loadSamples(5, (source, i) => (source === 'usrp-users.lists.ettus.com' || source === 'sa-easy_ham') && i % 20 === 0)
  const usrp = samples.filter((s) => s.source === 'usrp-users.lists.ettus.com')
  const sa = samples.filter((s) => s.source === 'sa-easy_ham')
  t.ok(usrp.length > 5 && sa.length > 5)
  t.notOk(usrp.some((s) => [...s.tokens.meta].some((m) => m.startsWith('hdr:list-'))), 'no list-header tokens from list mail')
  t.ok(sa.some((s) => s.parsed.headers.size > 0))
  t.ok(logitFeatures(loadDefaultModel().model, usrp[0].features) !== 0)
})
