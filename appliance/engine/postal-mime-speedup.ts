/*
 * Two costs in postal-mime that dominate parsing, removed with the same result:
 * - it joins each decoded MIME part by building a Blob from one chunk per line and reading
 *   it back. On Node 20 a Blob of thousands of small parts is slow enough to make parsing
 *   the most expensive step of the SMTP path (20 ms for a 50 KB newsletter). The decoders'
 *   finalize() is replaced by a plain concatenation.
 * - parse() awaits processLine() for every line, a promise and a trip through the
 *   microtask queue each, though only a boundary line (or the last one) does anything
 *   asynchronous. Other lines go straight to the part being read, as processLine() would
 *   send them.
 *
 * Each patch applies only when the code it replaces reads exactly as expected (postal-mime
 * is pinned in package.json); otherwise postal-mime runs unpatched. A test compares patched
 * and unpatched output on corpus mail.
 */
import path from 'node:path'

type Chunk = string | Uint8Array | ArrayBuffer

const encoder = new TextEncoder()

export function concatChunks(chunks: Chunk[]): ArrayBuffer {
  const parts = chunks.map((c) => (typeof c === 'string' ? encoder.encode(c) : c instanceof ArrayBuffer ? new Uint8Array(c) : c))
  let size = 0
  for (const p of parts) size += p.byteLength
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out.buffer
}

/** postal-mime 4.0.0's parse(), whitespace aside: the loop below must replace exactly this. */
const EXPECTED_PARSE = `async parse(buf) {
  if (this.started) { throw new Error('Can not reuse parser, create a new PostalMime object'); }
  this.started = true;
  this.buf = await this.resolveInput(buf);
  this.av = new Uint8Array(this.buf);
  this.readPos = 0;
  while (this.readPos < this.av.length) { const line = this.readLine(); await this.processLine(line.bytes, line.done); }
  this.forceRfc822Attachments = Boolean(this.options.forceRfc822Attachments) || this.hasReportParts();
  await this.collectNode(this.root, false, false);
  this.renderTextContent();
  const message = this.buildMessage();
  this.encodeAttachments();
  return message;
}`

const squash = (src: string) => src.replace(/\s+/g, '')

interface Parser {
  started: boolean
  forceRfc822Attachments: boolean
  buf: ArrayBuffer
  av: Uint8Array
  readPos: number
  boundaries: unknown[]
  currentNode: { feed(line: Uint8Array): void }
  options: { forceRfc822Attachments?: boolean }
  resolveInput(buf: unknown): Promise<ArrayBuffer>
  readLine(): { bytes: Uint8Array; done: boolean }
  processLine(line: Uint8Array, isFinal: boolean): Promise<void>
  hasReportParts(): boolean
  collectNode(node: unknown, a: boolean, b: boolean): Promise<void>
  renderTextContent(): void
  buildMessage(): unknown
  encodeAttachments(): void
  root: unknown
}

async function parseFeedingLinesDirectly(this: Parser, buf: unknown): Promise<unknown> {
  if (this.started) throw new Error('Can not reuse parser, create a new PostalMime object')
  this.started = true
  this.buf = await this.resolveInput(buf)
  this.av = new Uint8Array(this.buf)
  this.readPos = 0
  while (this.readPos < this.av.length) {
    const line = this.readLine()
    const b = line.bytes
    // processLine's own test for a line that may be a boundary ("--" first).
    const mayBeBoundary = this.boundaries.length > 0 && b.length > 2 && b[0] === 0x2d && b[1] === 0x2d
    if (mayBeBoundary || line.done) await this.processLine(b, line.done)
    else this.currentNode.feed(b)
  }
  this.forceRfc822Attachments = Boolean(this.options.forceRfc822Attachments) || this.hasReportParts()
  await this.collectNode(this.root, false, false)
  this.renderTextContent()
  const message = this.buildMessage()
  this.encodeAttachments()
  return message
}

/** processLine() must end, for a line that is no boundary, in exactly this. */
const EXPECTED_LINE_TAIL = 'this.currentNode.feed(line);if(isFinal){returnthis.finalize();}}'

interface DecoderClass {
  prototype: { finalize(this: { chunks: Chunk[] } & Record<string, any>): Promise<ArrayBuffer> }
}

const DECODERS: [file: string, flush: string | null][] = [
  ['pass-through-decoder.js', null],
  ['base64-decoder.js', 'flushRemainder'],
  ['qp-decoder.js', 'flushBuffer'],
]

let applied: boolean | null = null
const originals = new Map<DecoderClass, DecoderClass['prototype']['finalize']>()
let originalParse: ((buf: unknown) => Promise<unknown>) | null = null

export function applyPostalMimeSpeedup(): boolean {
  if (applied !== null) return applied
  applied = false
  try {
    const dir = path.dirname(require.resolve('postal-mime'))
    const classes: [DecoderClass, string | null][] = []
    for (const [file, flush] of DECODERS) {
      const mod = require(path.join(dir, file))
      const cls: DecoderClass = mod.default ?? mod
      const src = String(cls.prototype.finalize)
      if (!src.includes('new Blob(this.chunks') || (flush && !src.includes(`this.${flush}()`))) return false
      classes.push([cls, flush])
    }
    for (const [cls, flush] of classes) {
      originals.set(cls, cls.prototype.finalize)
      cls.prototype.finalize = async function () {
        if (flush) this[flush]()
        return concatChunks(this.chunks)
      }
    }
    const mod = require('postal-mime')
    const proto = (mod.default ?? mod).prototype
    if (squash(String(proto.parse)) === squash(EXPECTED_PARSE) && squash(String(proto.processLine)).endsWith(EXPECTED_LINE_TAIL)) {
      originalParse = proto.parse
      proto.parse = parseFeedingLinesDirectly
    }
    applied = true
  } catch {
    applied = false
  }
  return applied
}

/** For the equivalence test only. */
export function revertPostalMimeSpeedup(): void {
  for (const [cls, fn] of originals) cls.prototype.finalize = fn
  originals.clear()
  if (originalParse) {
    const mod = require('postal-mime')
    ;(mod.default ?? mod).prototype.parse = originalParse
    originalParse = null
  }
  applied = null
}
