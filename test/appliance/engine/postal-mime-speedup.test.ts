/* The postal-mime speed-up must not change a single parsed byte. */
import fs from 'node:fs'
import path from 'node:path'
import { corpusDir } from '../../../appliance/engine/training'
import t from 'tap'
import { applyPostalMimeSpeedup, revertPostalMimeSpeedup } from '../../../appliance/engine/postal-mime-speedup'

const PostalMime = require('postal-mime')
const CORPUS = path.join(corpusDir(), 'dev')

function sample(): Buffer[] {
  const out: Buffer[] = []
  for (const d of ['ham/sa-hard_ham', 'spam/phishing_pot', 'ham/foff-milter', 'spam/sa-spam_2']) {
    for (const f of fs.readdirSync(path.join(CORPUS, d)).sort().slice(0, 25)) out.push(fs.readFileSync(path.join(CORPUS, d, f)))
  }
  return out
}

// Lines that start like a boundary but are none, a nested multipart, and a last line with
// no line break: the cases where the patched parse loop hands a line to processLine().
const TRICKY = [
  'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\npreamble\r\n--outer\r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\n-- \r\n--inner-not\r\n--outer but not quite\r\ntext\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n--outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--outer--   \r\nepilogue',
  'Subject: no body',
  'Subject: x\n\n--\n--x\nlast line without a break',
].map((m) => Buffer.from(m))

function comparable(email: any): string {
  return JSON.stringify(email, (_k, v) => (v instanceof ArrayBuffer ? Buffer.from(v).toString('base64') : v))
}

t.test('patched and unpatched postal-mime parse corpus mail identically', async (t) => {
  const mails = [...sample(), ...TRICKY]
  revertPostalMimeSpeedup()
  const plain = await Promise.all(mails.map((m) => PostalMime.parse(m, { attachmentEncoding: 'arraybuffer' })))
  t.ok(applyPostalMimeSpeedup(), 'the patch applies to the pinned postal-mime')
  t.equal(PostalMime.prototype.parse.name, 'parseFeedingLinesDirectly', 'the parse loop is replaced too')
  const fast = await Promise.all(mails.map((m) => PostalMime.parse(m, { attachmentEncoding: 'arraybuffer' })))
  for (let i = 0; i < mails.length; i++) t.equal(comparable(fast[i]), comparable(plain[i]), `message ${i}`)
})
