/*
 * QR codes in images ("quishing"), decoded by the real zxing-wasm from real PNGs that
 * zxing-wasm's writer draws: attached, inline by cid, or written into the HTML as a data: URI.
 */
import fs from 'node:fs'
import t from 'tap'
import { scanMessage } from '../../../appliance/engine/engine'
import { phishingLinkChecks } from '../../../appliance/engine/filters/phishing-links'
import { parseMessage } from '../../../appliance/engine/message'
import { inlineImages, qrCodeTexts } from '../../../appliance/engine/qr-codes'

async function qrPng(text: string): Promise<Buffer> {
  const z = require('zxing-wasm/full')
  await z.prepareZXingModule({ overrides: { wasmBinary: fs.readFileSync(require.resolve('zxing-wasm/full/zxing_full.wasm')).buffer }, fireImmediately: true })
  const w = await z.writeBarcode(text, { format: 'QRCode', scale: 6 })
  if (w.error) throw new Error(w.error)
  return Buffer.from(await w.image.arrayBuffer())
}

const wrap = (b64: string) => b64.replace(/.{76}/g, '$&\r\n')
const head = 'From: IT Desk <it@corp-help.example>\r\nTo: bob@example.org\r\nSubject: Your mailbox needs to be verified\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <q@x.test>\r\nMIME-Version: 1.0\r\n'

function attached(png: Buffer): Buffer {
  return Buffer.from(
    `${head}Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nScan the code with your phone to keep your mailbox.\r\n--b\r\nContent-Type: image/png; name="verify.png"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline; filename="verify.png"\r\n\r\n${wrap(png.toString('base64'))}\r\n--b--\r\n`,
  )
}

t.test('a QR code attached as a PNG: its link is read, scored and joins the URLs', async (t) => {
  const msg = await parseMessage(attached(await qrPng('https://m1crosoft-verify.example/login?u=bob')))
  t.same(msg.qrCodes, ['https://m1crosoft-verify.example/login?u=bob'])
  t.ok(msg.urls.includes('https://m1crosoft-verify.example/login?u=bob'), 'the other URL checks see it too')
  t.match(phishingLinkChecks(msg), [{ name: 'QR_CODE_URL', detail: 'm1crosoft-verify.example' }])
  const scanned = await scanMessage(attached(await qrPng('https://m1crosoft-verify.example/login?u=bob')), {})
  t.match(scanned.symbols.find((s) => s.name === 'QR_CODE_URL'), { weight: 2 }, 'weighed by the shipped weights table')
})

t.test('a QR code written into the HTML as a data: URI is read too', async (t) => {
  const png = await qrPng('https://bit.ly/3qr-phish')
  const raw = Buffer.from(`${head}Content-Type: text/html; charset=utf-8\r\n\r\n<p>Scan to confirm:</p><img src="data:image/png;base64,${png.toString('base64')}">\r\n`)
  const msg = await parseMessage(raw)
  t.same(msg.qrCodes, ['https://bit.ly/3qr-phish'])
  t.same(phishingLinkChecks(msg).map((s) => s.name).sort(), ['QR_CODE_URL', 'URL_SHORTENER'], 'and the shortener check sees its link')
  t.equal(inlineImages('<img src="data:image/png;base64,AAAA">').length, 0, 'a data: URI too small to be an image is not tried')
})

t.test('no false reads: a QR code that is not a link, a picture without one, a broken image', async (t) => {
  const wifi = await parseMessage(attached(await qrPng('WIFI:S:office;T:WPA;P:secret;;')))
  t.same(wifi.qrCodes, ['WIFI:S:office;T:WPA;P:secret;;'])
  t.notOk(phishingLinkChecks(wifi).some((s) => s.name === 'QR_CODE_URL'), 'a QR code that is not a web link is no QR_CODE_URL')
  const blank = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAASklEQVR4nO3PQQ0AIAzAQMC/5+ECHjRpDrhVS7JX9+cBgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICA/AUOuIUBgQ8xB0gAAAAASUVORK5CYII=', 'base64')
  t.same(await qrCodeTexts([{ mimeType: 'image/png', size: 4000, content: new Uint8Array(Buffer.concat([blank, Buffer.alloc(4000 - blank.length)])) }]), [], 'a plain image has none')
  t.same(await qrCodeTexts([{ mimeType: 'image/png', size: 1000, content: new Uint8Array(1000).fill(7) }]), [], 'garbage is not an error')
})
