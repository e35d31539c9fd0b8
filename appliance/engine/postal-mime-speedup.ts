/*
 * postal-mime joins each decoded MIME part by building a Blob from one chunk per line and
 * reading it back. On Node 20 a Blob of thousands of small parts is slow enough to make
 * parsing the most expensive step of the SMTP path (20 ms for a 50 KB newsletter). The
 * decoders' finalize() is replaced by a plain concatenation with the same result.
 *
 * The patch applies only when the decoders look exactly as expected (postal-mime is pinned
 * in package.json); otherwise postal-mime runs unpatched. A test compares patched and
 * unpatched output on corpus mail.
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
  applied = null
}
