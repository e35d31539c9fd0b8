/*
 * The engine on real and crafted mail. Tests assert which symbols fire, never total scores,
 * so retuning weights never breaks a detection test.
 */
import fs from 'node:fs'
import path from 'node:path'
import { corpusDir } from '../../../appliance/engine/training'
import t from 'tap'
import { deserialiseLogistic, emptyLogistic, type FeatureVector, featureHash, features, learnFeatures, predictFeatures, serialiseLogistic, trainLogistic } from '../../../appliance/engine/logistic'
import { scanMessage } from '../../../appliance/engine/engine'
import { rawChecks, sanityChecks } from '../../../appliance/engine/filters/sanity'
import { htmlLinks, htmlToText } from '../../../appliance/engine/html-text'
import { parseMessage } from '../../../appliance/engine/message'
import { loadActiveModel, loadDefaultModel, saveModel } from '../../../appliance/engine/models'
import { score, verdictFor } from '../../../appliance/engine/symbols'
import { allTokens, TOKEN_SCHEME, tokenize } from '../../../appliance/engine/tokenize'
import { openDatabase } from '../../../appliance/db/database'

const CORPUS = path.join(corpusDir(), 'dev')
const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'))

async function symbolsOf(raw: string, now = Date.parse('2026-11-27T12:00:00Z')): Promise<string[]> {
  const buf = crlf(raw)
  return [...rawChecks(buf), ...sanityChecks(await parseMessage(buf), now)].map((s) => s.name).sort()
}

t.test('html to text drops hidden parts and decodes entities', async (t) => {
  t.equal(htmlToText('<html><head><title>x</title><style>p{}</style></head><body><p>Caf&eacute;&nbsp;&amp; <b>bar</b>&#33;</p><script>evil()</script></body>'), 'Café & bar!')
  t.same(htmlLinks('<a href="http://evil.test/x">www.bank.test</a>'), [{ href: 'http://evil.test/x', text: 'www.bank.test' }])
})

t.test('sanity symbols, table-driven', async (t) => {
  const base = 'From: Alice <alice@example.com>\nTo: bob@example.org\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <1@example.com>\n'
  const cases: [string, string, string[]][] = [
    ['a well-formed message fires nothing', `${base}Subject: lunch\n\nSee you at noon.\n`, []],
    ['missing From, Date and Message-ID', 'Subject: hi\n\nbody text\n', ['MISSING_DATE', 'MISSING_FROM', 'MISSING_MESSAGE_ID']],
    ['date in the future', base.replace('2026', '2031') + 'Subject: x\n\nbody\n', ['DATE_IN_FUTURE']],
    ['unparseable date', base.replace(/Date: .*/, 'Date: yesterday-ish') + 'Subject: x\n\nbody\n', ['DATE_INVALID']],
    ['reply-to elsewhere', `${base}Reply-To: collect@payout.test\nSubject: x\n\nbody\n`, ['FROM_REPLYTO_DIFFER']],
    ['all-caps subject', `${base}Subject: URGENT BUSINESS PROPOSAL\n\nbody\n`, ['SUBJECT_ALLCAPS']],
    ['html only, link text lies', `${base}Subject: x\nContent-Type: text/html\n\n<p><a href="http://198.51.100.7/login">https://www.mybank.test/login</a></p>\n`, ['HTML_ONLY', 'URL_ANCHOR_MISMATCH', 'URL_IP_HOST']],
    ['empty body', `${base}Subject: x\n\n\n`, ['EMPTY_BODY']],
    ['an unquoted comma hides the address from parsers', base.replace(/From: .*/, 'From: Microsoft account team ,_<x9b70@mgq3z0h5os.test>') + 'Subject: x\n\nbody\n', ['FROM_MALFORMED']],
    ['a quoted comma is a well-formed name', base.replace(/From: .*/, 'From: "Doe, John" <john@example.com>') + 'Subject: x\n\nbody\n', []],
    ['a group with no mailbox is no sender', base.replace(/From: .*/, 'From: undisclosed-senders:;') + 'Subject: x\n\nbody\n', ['MISSING_FROM']],
    ['8-bit header and a long line', `${base}Subject: Gr\u00fc\u00dfe\n\n${'y'.repeat(1200)}\n`, ['HEADER_8BIT', 'LONG_LINE']],
  ]
  for (const [name, raw, want] of cases) t.same(await symbolsOf(raw), want, name)
})

t.test('a From no mail program writes still names the sender the reader sees', async (t) => {
  const from = async (value: string) => {
    const m = await parseMessage(crlf(`From: ${value}\nSubject: x\n\nbody\n`))
    return { from: m.from, malformed: m.fromMalformed }
  }
  t.same(await from('Microsoft account team ,_<x9b70@mgq3z0h5os.test>'), { from: { name: 'Microsoft account team', address: 'x9b70@mgq3z0h5os.test' }, malformed: true })
  t.same(await from('=?utf-8?B?UGF5UGFs?= ,_<a@b.test>'), { from: { name: 'PayPal', address: 'a@b.test' }, malformed: true }, 'encoded words decoded')
  t.same(await from('Doe, John <John@Example.com>'), { from: { name: 'Doe, John', address: 'john@example.com' }, malformed: true })
  t.same(await from('"Doe, John" <john@example.com>'), { from: { name: 'Doe, John', address: 'john@example.com' }, malformed: false })
  t.same(await from('a <x@one.test>, b <y@two.test>'), { from: { name: 'a', address: 'x@one.test' }, malformed: false }, 'a list: the first mailbox, as before')
  t.same(await from('"Facebook" <>'), { from: null, malformed: true }, 'a name with an empty address')
  t.same(await from('undisclosed-senders:;'), { from: null, malformed: false }, 'a group names nobody')
})

t.test('malformed MIME still parses into something scoreable', async (t) => {
  const msg = await parseMessage(crlf('Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Transfer-Encoding: base64\n\n%%%\n--b'))
  t.type(msg.text, 'string')
})

t.test('the classifier learns, serialises, and learns one report incrementally', async (t) => {
  const words = (...w: string[]) => features({ words: w })
  const samples: { f: FeatureVector; spam: boolean }[] = []
  for (let i = 0; i < 40; i++) {
    samples.push({ f: words('cheap', 'pills', 'winner', `s${i}`), spam: true })
    samples.push({ f: words('meeting', 'agenda', 'patch', `h${i}`), spam: false })
  }
  const m = trainLogistic(samples, { scheme: 'test-scheme' })
  t.ok(predictFeatures(m, words('cheap', 'pills')) > 0.9)
  t.ok(predictFeatures(m, words('meeting', 'patch')) < 0.1)
  const back = deserialiseLogistic(serialiseLogistic(m))
  t.equal(predictFeatures(back, words('cheap', 'pills')), predictFeatures(m, words('cheap', 'pills')))
  t.equal(back.messages, 80)
  t.equal(back.scheme, 'test-scheme', 'the model remembers the tokens it was trained on')
  const report = words('agenda', 'lottery', 'claim')
  const before = predictFeatures(m, report)
  for (let i = 0; i < 3; i++) learnFeatures(m, report, true)
  t.ok(predictFeatures(m, report) > before, 'a spam report moves that message towards spam')
  t.equal(predictFeatures(emptyLogistic(), report), 0.5, 'an empty model is unsure')
  // Loaded for scoring (the SMTP service) it scores alike but will not learn; loaded to learn, it does.
  t.throws(() => learnFeatures(back, report, true), /loaded for scoring only/)
  const learner = deserialiseLogistic(serialiseLogistic(m), { learn: true })
  learnFeatures(learner, report, true)
  t.ok(predictFeatures(learner, report) > predictFeatures(m, report))
  t.throws(() => deserialiseLogistic(require('node:zlib').gzipSync(Buffer.from([0, 0, 0, 2, 123, 125]))), /unknown classifier model format/)
})

t.test('a meta token keeps its weight however long the text around it', async (t) => {
  const short = features({ words: ['hello'], meta: ['from:freemail'] })
  const long = features({ words: Array.from({ length: 400 }, (_, i) => `w${i}`), meta: ['from:freemail'] })
  const valueOf = (f: FeatureVector, token: string) => f.value[[...f.index].indexOf(featureHash(token))]
  t.equal(valueOf(short, 'from:freemail'), valueOf(long, 'from:freemail'))
  t.ok(valueOf(long, 'w1') < valueOf(short, 'hello') / 10, 'a word weighs less in a long text')
})

t.test('stored models trained on other tokens are not used', async (t) => {
  const db = openDatabase(path.join(t.testdir(), 'moat.db'))
  t.teardown(() => db.close())
  const stale = emptyLogistic('moat-tokens-0')
  stale.messages = 5
  const staleId = saveModel(db, stale, 'before the token change')
  t.equal(loadActiveModel(db).id, null, 'the shipped model serves instead')
  t.equal(loadActiveModel(db).newestStoredId, staleId, 'and the stale version counts as seen, so it is not decoded again and again')
  const fresh = emptyLogistic(TOKEN_SCHEME)
  fresh.messages = 5
  const id = saveModel(db, fresh, 'after')
  t.equal(loadActiveModel(db).id, id)
})

t.test('the tokenizer ignores anonymisation placeholders and other filters\' verdicts', async (t) => {
  const msg = await parseMessage(crlf('From: <email>\nX-Spam-Status: Yes, score=20\nSubject: hello <domain>\n\nvisit <url> now\n'))
  const tokens = [...allTokens(tokenize(msg))]
  t.notOk(tokens.some((x) => /domain|email|url>/.test(x)), tokens.join(' '))
  t.notOk(msg.headers.has('x-spam-status'))
})

t.test('sender tokens say whether the sender\'s names agree', async (t) => {
  const coherent = await parseMessage(
    crlf(
      'From: Bearaby <hello@bearaby.com>\nReturn-Path: <bounce@mail.bearaby.com>\nDKIM-Signature: v=1; d=send.bearaby.com; s=x; b=abc\nSubject: Sleep more\nContent-Type: text/html\n\n<a href="https://www.bearaby.com/sale">shop</a>\n',
    ),
  )
  const phish = await parseMessage(
    crlf(
      'From: Marriott Rewards <marriotthotels123@rapidstone.ru.com>\nReply-To: claims@gmail.com\nSubject: A thank you surprise\nContent-Type: text/html\n\n<a href="https://x.example.net/a">claim</a><a href="https://y.example.org/b">now</a>\n',
    ),
  )
  const a = tokenize(coherent).meta
  const b = tokenize(phish).meta
  for (const tok of ['rp:same', 'dkim:aligned', 'fromname:matches', 'links:share:most', 'fromtld:com', 'fromlocal:role']) t.ok(a.has(tok), `coherent mail has ${tok}`)
  for (const tok of ['dkim:none', 'fromname:differs', 'replyto:freemail', 'links:share:none', 'links:otherorgs:2-3', 'fromsuffix:ru.com', 'fromlocal:digits']) t.ok(b.has(tok), `phish has ${tok}`)
  t.ok(allTokens(tokenize(phish)).has('c4:marr'), 'character grams of the display name and text')
})

t.test('scorer: each symbol counts once; thresholds decide the verdict', async (t) => {
  const s = score([{ name: 'CLASSIFIER_99' }, { name: 'CLASSIFIER_99' }, { name: 'URL_IP_HOST' }, { name: 'UNKNOWN_SYMBOL' }])
  t.same(s.symbols.map((x) => x.name), ['CLASSIFIER_99', 'URL_IP_HOST', 'UNKNOWN_SYMBOL'])
  t.equal(s.symbols[2].weight, 0)
  t.equal(verdictFor(4.9, { spam: 5, surespam: 10 }), 'clean')
  t.equal(verdictFor(5, { spam: 5, surespam: 10 }), 'spam')
  t.equal(verdictFor(10, { spam: 5, surespam: 10 }), 'surespam')
})

t.test('the shipped model classifies real mail it was not trained on', async (t) => {
  // The default model never saw phishing_pot nor the mailing-list archives.
  const model = loadDefaultModel().model
  const pick = (dir: string, n: number) => fs.readdirSync(path.join(CORPUS, dir)).sort().slice(0, n).map((f) => path.join(CORPUS, dir, f))
  let hamFlagged = 0
  const ham = pick('ham/linux-raid.vger.kernel.org', 40)
  for (const f of ham) if ((await scanMessage(fs.readFileSync(f), { model })).verdict !== 'clean') hamFlagged++
  t.ok(hamFlagged <= 1, `${hamFlagged} of ${ham.length} unseen list ham flagged`)
  const r = await scanMessage(fs.readFileSync(pick('spam/sa-spam_2', 1)[0]), { model })
  t.not(r.verdict, 'clean', 'spam from the training sources is caught')
})

t.test('the verdict does not flip when only the Date header changes', async (t) => {
  const model = loadDefaultModel().model
  const dir = path.join(CORPUS, 'spam/sa-spam_2')
  for (const f of fs.readdirSync(dir).sort().slice(0, 15)) {
    const raw = fs.readFileSync(f.startsWith('/') ? f : path.join(dir, f), 'latin1')
    const a = await scanMessage(Buffer.from(raw, 'latin1'), { model })
    const b = await scanMessage(Buffer.from(raw.replace(/^Date:.*$/im, 'Date: Fri, 27 Nov 2026 10:00:00 +0000'), 'latin1'), { model })
    t.equal(b.verdict, a.verdict, f)
  }
})
