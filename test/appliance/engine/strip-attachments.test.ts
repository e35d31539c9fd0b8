/* Stripping dangerous attachments: what goes, what stays byte for byte, and that the result parses. */
import { strToU8, zipSync } from 'fflate'
import t from 'tap'
import PostalMime from 'postal-mime'
import { stripDangerous, WARNING_FILENAME } from '../../../appliance/engine/strip-attachments'
import { attachmentSymbols } from '../../../appliance/engine/filters/attachments'
import { parseMessage } from '../../../appliance/engine/message'

const MZ = new Uint8Array([0x4d, 0x5a, 0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xff, 0xff])
const PDF = strToU8('%PDF-1.7\n%fake but harmless\n')
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64').replace(/.{1,76}/g, '$&\r\n')

function part(name: string, bytes: Uint8Array, type = 'application/octet-stream'): string {
  return `Content-Type: ${type}; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(bytes)}`
}

const TEXT_PART = 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nPlease find the invoice attached.\r\nRegards, Bob\r\n'
const HEAD = 'From: Bob <bob@partner.test>\r\nTo: alice@example.com\r\nSubject: Invoice\r\nMessage-ID: <x1@partner.test>\r\nMIME-Version: 1.0\r\n'

function mixed(parts: string[]): Buffer {
  return Buffer.from(`${HEAD}Content-Type: multipart/mixed; boundary="b1"\r\n\r\nThis is a MIME message.\r\n${parts.map((p) => `--b1\r\n${p}`).join('\r\n')}\r\n--b1--\r\n`)
}

t.test('an executable in multipart/mixed: replaced by the warning file, everything else untouched', async (t) => {
  const pdf = part('terms.pdf', PDF)
  const raw = mixed([TEXT_PART, part('invoice.pdf.exe', MZ), pdf])
  const r = await stripDangerous(raw)
  t.ok(r, 'something was stripped')
  t.same(r!.removed.map((x) => x.filename), ['invoice.pdf.exe'])
  const out = r!.raw.toString('latin1')
  t.notOk(out.includes(b64(MZ).trim()), 'the executable is gone')
  t.ok(out.startsWith(`${HEAD}Content-Type: multipart/mixed; boundary="b1"\r\n\r\nThis is a MIME message.\r\n`), 'headers and preamble unchanged')
  t.ok(out.includes(TEXT_PART), 'the text part is byte-identical')
  t.ok(out.includes(pdf), 'the harmless attachment is byte-identical')
  const parsed = await PostalMime.parse(r!.raw)
  t.same(parsed.attachments.map((a) => a.filename), [WARNING_FILENAME, 'terms.pdf'])
  t.match(parsed.text, /^WARNING: Moat removed an attachment[\s\S]*invoice\.pdf\.exe[\s\S]*Please find the invoice attached/)
  t.match(String(parsed.attachments[0].content instanceof ArrayBuffer ? Buffer.from(parsed.attachments[0].content) : parsed.attachments[0].content), /invoice\.pdf\.exe[\s\S]*Reason: .*executable/)
  t.same(attachmentSymbols(await parseMessage(r!.raw)).map((s) => s.name), [], 'the result raises no attachment symbol')
})

t.test('a ZIP with a script inside goes as a whole; an encoded file name does not hide an .exe', async (t) => {
  const zip = zipSync({ 'readme.txt': strToU8('hi'), 'payload.js': strToU8('WScript.Run()') })
  const encodedName = `=?utf-8?B?${Buffer.from('rechnung.exe').toString('base64')}?=`
  const raw = mixed([TEXT_PART, part('docs.zip', zip, 'application/zip'), part(encodedName, PDF)])
  const r = await stripDangerous(raw)
  t.same(r!.removed.map((x) => x.filename), ['docs.zip', 'rechnung.exe'])
  t.match(r!.removed[0].reason, /payload\.js in docs\.zip/)
  const parsed = await PostalMime.parse(r!.raw)
  t.same(parsed.attachments.map((a) => a.filename), [WARNING_FILENAME, WARNING_FILENAME])
})

t.test('nested multiparts: the dangerous part in multipart/mixed inside multipart/mixed', async (t) => {
  const alt = 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nplain\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--alt--'
  const inner = `Content-Type: multipart/mixed; boundary="in"\r\n\r\n--in\r\n${part('setup.msi', PDF)}\r\n--in--`
  const raw = mixed([alt, inner])
  const r = await stripDangerous(raw)
  t.same(r!.removed.map((x) => x.filename), ['setup.msi'])
  t.ok(r!.raw.toString('latin1').includes(alt), 'the alternative part is untouched')
  const parsed = await PostalMime.parse(r!.raw)
  t.match(parsed.text, /WARNING[\s\S]*setup\.msi/)
  t.match(parsed.html, /html/)
  t.same(parsed.attachments.map((a) => a.filename), [WARNING_FILENAME])
})

t.test('a message that is nothing but the attachment is wrapped in a new multipart/mixed', async (t) => {
  const raw = Buffer.from(`${HEAD}Content-Type: application/x-msdownload; name="run.exe"\r\nContent-Disposition: attachment; filename="run.exe"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(MZ)}`)
  const r = await stripDangerous(raw)
  t.same(r!.removed.map((x) => x.filename), ['run.exe'])
  const parsed = await PostalMime.parse(r!.raw)
  t.equal(parsed.subject, 'Invoice')
  t.equal(parsed.messageId, '<x1@partner.test>')
  t.same(parsed.attachments.map((a) => a.filename), [WARNING_FILENAME])
  t.match(parsed.text, /WARNING: Moat removed an attachment/)
  t.equal((r!.raw.toString('latin1').match(/^Content-Type:/gim) ?? []).length, 3, 'one outer Content-Type, one per part')
})

t.test('multipart/related at the top with an attachment: wrapped, the original tree kept inside', async (t) => {
  const raw = Buffer.from(`${HEAD}Content-Type: multipart/related; boundary="r"\r\n\r\n--r\r\nContent-Type: text/html\r\n\r\n<p>see</p>\r\n--r\r\n${part('x.scr', MZ)}\r\n--r--\r\n`)
  const r = await stripDangerous(raw)
  t.same(r!.removed.map((x) => x.filename), ['x.scr'])
  const out = r!.raw.toString('latin1')
  t.ok(out.includes('Content-Type: multipart/related; boundary="r"\r\n\r\n--r\r\nContent-Type: text/html\r\n\r\n<p>see</p>\r\n--r\r\n'), 'the related tree is kept')
  const parsed = await PostalMime.parse(r!.raw)
  t.match(parsed.text ?? '', /WARNING/)
  t.ok(parsed.attachments.some((a) => a.filename === WARNING_FILENAME))
})

t.test('nothing dangerous, or nothing that can be located: null', async (t) => {
  t.equal(await stripDangerous(mixed([TEXT_PART, part('terms.pdf', PDF)])), null)
  t.equal(await stripDangerous(Buffer.from(`${HEAD}\r\nplain text only\r\n`)), null)
  t.equal(await stripDangerous(Buffer.from('garbage without headers')), null)
})
