/*
 * QR codes in a message's images, attached or written into its HTML as data: URIs ("quishing": the phishing link is a picture, so no text or
 * URL check sees it). Decoded with zxing-wasm (ZXing-C++ compiled to WebAssembly, MIT and
 * Apache-2.0): the maintained decoder, where the pure-JavaScript ones are unmaintained; it
 * decodes PNG, JPEG, GIF and BMP itself. The WebAssembly module ships in node_modules and is
 * read from disk, never fetched.
 *
 * Bounded work per message: at most MAX_IMAGES images of MIN_BYTES..MAX_BYTES are tried, and
 * only for QR codes; an image that fails to decode is simply not a QR code.
 */
import fs from 'node:fs'

const IMAGE_TYPES = /^image\/(png|jpe?g|gif|bmp)$/
export const MAX_IMAGES = 4
const MIN_BYTES = 200
const MAX_BYTES = 3 * 1024 * 1024

type Reader = typeof import('zxing-wasm/reader')
let reader: Promise<Reader> | null = null

function load(): Promise<Reader> {
  reader ??= (async () => {
    const z: Reader = require('zxing-wasm/reader')
    const wasm = require.resolve('zxing-wasm/reader/zxing_reader.wasm')
    await z.prepareZXingModule({ overrides: { wasmBinary: fs.readFileSync(wasm).buffer as ArrayBuffer }, fireImmediately: true })
    return z
  })()
  return reader
}

export interface ImagePart {
  mimeType: string
  size: number
  content: Uint8Array
}

const DATA_URI = /data:image\/(png|jpe?g|gif|bmp);base64,([A-Za-z0-9+/=\s]{200,4200000})/gi

/** Images written into the HTML itself (data: URIs), which is where quishing mail often puts them. */
export function inlineImages(html: string): ImagePart[] {
  const out: ImagePart[] = []
  for (const m of html.matchAll(DATA_URI)) {
    const content = Buffer.from(m[2].replace(/\s+/g, ''), 'base64')
    out.push({ mimeType: `image/${m[1].toLowerCase()}`, size: content.length, content })
    if (out.length >= MAX_IMAGES) break
  }
  return out
}

/** The text of every QR code found in the message's images (at most MAX_IMAGES are read). */
export async function qrCodeTexts(images: ImagePart[]): Promise<string[]> {
  const candidates = images.filter((a) => IMAGE_TYPES.test(a.mimeType) && a.size >= MIN_BYTES && a.size <= MAX_BYTES).slice(0, MAX_IMAGES)
  if (!candidates.length) return []
  const z = await load()
  const out: string[] = []
  for (const img of candidates) {
    try {
      const found = await z.readBarcodes(img.content, { formats: ['QRCode', 'MicroQRCode'], tryHarder: true, maxNumberOfSymbols: 4 })
      for (const r of found) if (r.isValid && r.text) out.push(r.text)
    } catch {
      // Not an image zxing can read: no QR code to report.
    }
  }
  return out
}
