/* Dangerous attachments, table-driven on messages built here (names, magic bytes, archives). */
import { strToU8, zipSync } from 'fflate'
import t from 'tap'
import { attachmentSymbols } from '../../../appliance/engine/filters/attachments'
import { parseMessage } from '../../../appliance/engine/message'

const MZ = new Uint8Array([0x4d, 0x5a, 0x90, 0, 3, 0, 0, 0])
const PDF = strToU8('%PDF-1.7\n%fake but harmless\n')

function mail(files: [string, Uint8Array][]): Buffer {
  const parts = files.map(
    ([name, bytes]) =>
      `--b\r\nContent-Type: application/octet-stream; name="${name}"\r\nContent-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(bytes).toString('base64').replace(/.{1,76}/g, '$&\r\n')}`,
  )
  return Buffer.from(`From: a@example.org\r\nSubject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n${parts.join('')}--b--\r\n`)
}

function encrypted(zip: Uint8Array): Uint8Array {
  const b = Buffer.from(zip)
  for (const sig of [[0x50, 0x4b, 0x03, 0x04, 6], [0x50, 0x4b, 0x01, 0x02, 8]] as const) {
    for (let i = b.indexOf(Buffer.from(sig.slice(0, 4))); i !== -1; i = b.indexOf(Buffer.from(sig.slice(0, 4)), i + 4)) b[i + sig[4]] |= 1
  }
  return new Uint8Array(b)
}

function nested(levels: number): Uint8Array {
  let z = zipSync({ 'deep.txt': strToU8('hello') })
  for (let i = 0; i < levels; i++) z = zipSync({ [`level${i}.zip`]: z })
  return z
}

const cases: [string, [string, Uint8Array][], string[]][] = [
  ['a PDF is fine', [['report.pdf', PDF]], []],
  ['an .exe with a decoy extension', [['invoice.pdf.exe', MZ]], ['ATTACH_DANGEROUS_EXT', 'ATTACH_DOUBLE_EXT', 'ATTACH_EXECUTABLE']],
  ['an executable renamed to .txt is found by its bytes', [['notes.txt', MZ]], ['ATTACH_EXECUTABLE']],
  ['a script inside a ZIP', [['docs.zip', zipSync({ 'readme.txt': strToU8('hi'), 'payload.js': strToU8('WScript.Run()') })]], ['ATTACH_DANGEROUS_EXT']],
  ['an executable two archives deep', [['outer.zip', zipSync({ 'inner.zip': zipSync({ 'setup.bin': MZ }) })]], ['ATTACH_EXECUTABLE']],
  ['a macro-enabled document', [['budget.xlsm', zipSync({ '[Content_Types].xml': strToU8('<x/>') })]], ['ATTACH_MACRO']],
  ['macros hidden in a .docx', [['letter.docx', zipSync({ 'word/vbaProject.bin': strToU8('vba') })]], ['ATTACH_MACRO']],
  ['a Java archive under another name', [['photo.zip', zipSync({ 'META-INF/MANIFEST.MF': strToU8('Main-Class: X') })]], ['ATTACH_DANGEROUS_EXT']],
  ['a zip bomb (ratio)', [['big.zip', zipSync({ 'zeros.bin': new Uint8Array(30 * 1024 * 1024) }, { level: 9 })]], ['ATTACH_ZIP_BOMB']],
  ['an encrypted archive', [['secret.zip', encrypted(zipSync({ 'a.txt': strToU8('x'), 'b.txt': strToU8('y') }, { level: 0 }))]], ['ATTACH_ENCRYPTED_ARCHIVE']],
  ['archives nested too deep', [['russian-doll.zip', nested(5)]], ['ATTACH_ARCHIVE_TOO_DEEP']],
]

for (const [name, files, want] of cases) {
  t.test(name, async (t) => {
    const symbols = attachmentSymbols(await parseMessage(mail(files)))
    t.same(symbols.map((s) => s.name).sort(), want.sort(), JSON.stringify(symbols))
  })
}

t.test('details name the file and where it was found', async (t) => {
  const symbols = attachmentSymbols(await parseMessage(mail([['outer.zip', zipSync({ 'inner.zip': zipSync({ 'setup.bin': MZ }) })]])))
  t.match(symbols[0].detail, /setup\.bin in inner\.zip in outer\.zip: executable content/)
})
