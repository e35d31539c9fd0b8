/*
 * Removes attachments (dangerous ones, or those an admin's rule names) from a message and
 * leaves the rest as it was received:
 * each removed part is replaced, in its place in the MIME tree, by a text part
 * `Moat-Attachment-Warning.txt` that names what was removed and why, and a short warning
 * becomes the first part of the message. Every other byte (the other parts, boundaries,
 * headers) stays as received, so the tree keeps its shape and the message still parses.
 *
 * Decoding a part (encodings, encoded file names) is postal-mime's, run on that part alone;
 * this module only finds where parts begin and end.
 *
 * Trusts nothing: boundaries, names and encodings are the sender's. When no part can be
 * located for removal, the result is null and the caller keeps the message in the quarantine.
 */
import crypto from 'node:crypto'
import PostalMime from 'postal-mime'
import { strippableFinding } from './filters/attachments'

export const WARNING_FILENAME = 'Moat-Attachment-Warning.txt'

const MAX_DEPTH = 32
const CRLF = Buffer.from('\r\n')

interface Entity {
  start: number
  /** Where the body begins (after the blank line), or `end` for an entity without one. */
  bodyStart: number
  end: number
  /** End of the header block's last line, CRLF excluded. */
  headerEnd: number
  contentType: string
  boundary: string | null
  children: Entity[]
}

export interface Removed {
  filename: string
  reason: string
}

export interface StripResult {
  raw: Buffer
  removed: Removed[]
}

function headerValue(block: string, name: string): string | null {
  const unfolded = block.replace(/\r\n[ \t]+/g, ' ')
  const m = new RegExp(`^${name}[ \\t]*:(.*)$`, 'im').exec(unfolded)
  return m ? m[1].trim() : null
}

function param(value: string, name: string): string | null {
  const m = new RegExp(`;\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, 'i').exec(value)
  if (!m) return null
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]
}

function parseEntity(raw: Buffer, start: number, end: number, depth: number): Entity {
  let headerEnd: number
  let bodyStart: number
  if (raw[start] === 0x0d && raw[start + 1] === 0x0a) {
    headerEnd = start
    bodyStart = start + 2
  } else {
    const blank = raw.indexOf('\r\n\r\n', start)
    if (blank === -1 || blank >= end) {
      headerEnd = end
      bodyStart = end
    } else {
      headerEnd = blank
      bodyStart = blank + 4
    }
  }
  const block = raw.toString('latin1', start, headerEnd)
  const ct = headerValue(block, 'content-type') ?? 'text/plain'
  const contentType = ct.split(';')[0].trim().toLowerCase()
  const boundary = contentType.startsWith('multipart/') ? param(ct, 'boundary') : null
  const entity: Entity = { start, bodyStart, end, headerEnd, contentType, boundary, children: [] }
  if (depth >= MAX_DEPTH) return entity
  if (boundary) {
    entity.children = splitParts(raw, bodyStart, end, boundary).map(([s, e]) => parseEntity(raw, s, e, depth + 1))
  } else if (contentType === 'message/rfc822' && !/base64|quoted-printable/i.test(headerValue(block, 'content-transfer-encoding') ?? '')) {
    if (bodyStart < end) entity.children = [parseEntity(raw, bodyStart, end, depth + 1)]
  }
  return entity
}

/** The parts of a multipart body: [start, end) of each, between its delimiter lines. */
function splitParts(raw: Buffer, bodyStart: number, end: number, boundary: string): [number, number][] {
  const delimiter = Buffer.from(`--${boundary}`, 'latin1')
  const parts: [number, number][] = []
  let open = -1
  for (let i = raw.indexOf(delimiter, bodyStart); i !== -1 && i < end; i = raw.indexOf(delimiter, i + 1)) {
    // A delimiter line starts the body or follows a CRLF, which belongs to it.
    if (i !== bodyStart && !(raw[i - 2] === 0x0d && raw[i - 1] === 0x0a)) continue
    let j = i + delimiter.length
    const closing = raw[j] === 0x2d && raw[j + 1] === 0x2d
    if (closing) j += 2
    while (raw[j] === 0x20 || raw[j] === 0x09) j++
    const lineEnd = raw[j] === 0x0d && raw[j + 1] === 0x0a ? j + 2 : j >= end ? end : -1
    if (lineEnd === -1) continue
    const partEnd = i === bodyStart ? i : i - 2
    if (open !== -1) parts.push([open, Math.max(open, partEnd)])
    if (closing) return parts
    open = lineEnd
  }
  // No closing delimiter: the last part runs to the end (mail is often cut like that).
  if (open !== -1 && open < end) parts.push([open, end])
  return parts
}

function leaves(e: Entity, out: Entity[] = []): Entity[] {
  if (e.children.length === 0) out.push(e)
  for (const c of e.children) leaves(c, out)
  return out
}

/** Names from mail shown in our own text: printable ASCII only, and not too long. */
function printable(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > 200 ? `${clean.slice(0, 197)}...` : clean
}

function textEntity(body: string, filename?: string): Buffer {
  const head = filename
    ? `Content-Type: text/plain; charset=us-ascii; name="${filename}"\r\nContent-Disposition: attachment; filename="${filename}"\r\n`
    : 'Content-Type: text/plain; charset=us-ascii\r\nContent-Disposition: inline\r\n'
  return Buffer.from(`${head}Content-Transfer-Encoding: 7bit\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`, 'latin1')
}

function warningAttachment(r: Removed): Buffer {
  return textEntity(
    `Moat removed the attachment "${printable(r.filename)}" from this message.\n` +
      `Reason: ${printable(r.reason)}\n\n` +
      `Files like this one can harm your computer. The original message is kept in the\n` +
      `quarantine; ask your administrator if you need it.\n`,
    WARNING_FILENAME,
  )
}

function warningBlock(removed: Removed[]): Buffer {
  const list = removed.map((r) => `  - ${printable(r.filename)} (${printable(r.reason)})`).join('\n')
  return textEntity(
    `WARNING: Moat removed ${removed.length === 1 ? 'an attachment' : `${removed.length} attachments`} from this message because ${removed.length === 1 ? 'it' : 'they'} can harm your computer:\n` +
      `${list}\nThe original message is kept in the quarantine; ask your administrator if you need it.\n`,
  )
}

/** Splits a header block into its fields, each with its folded continuation lines. */
function headerFields(block: string): string[] {
  return block.length ? block.split(/\r\n(?![ \t])/) : []
}

/** Why an attachment is to be removed, or null to keep it. */
export type StripReason = (filename: string, content: Uint8Array) => string | null

/** Removes the dangerous attachments (executables, scripts, macros… as moat-attachments finds them). */
export function stripDangerous(raw: Buffer): Promise<StripResult | null> {
  return stripAttachments(raw, strippableFinding)
}

/** Removes every attachment `reasonFor` gives a reason for; null when there is none. */
export async function stripAttachments(raw: Buffer, reasonFor: StripReason): Promise<StripResult | null> {
  const top = parseEntity(raw, 0, raw.length, 0)
  const replaced: { entity: Entity; removed: Removed }[] = []
  for (const leaf of leaves(top)) {
    const part = raw.subarray(leaf.start, leaf.end)
    let parsed
    try {
      parsed = await PostalMime.parse(part, { attachmentEncoding: 'arraybuffer' })
    } catch {
      continue
    }
    for (const a of parsed.attachments) {
      const content = typeof a.content === 'string' ? Buffer.from(a.content) : new Uint8Array(a.content as ArrayBuffer)
      const filename = a.filename ?? '(unnamed)'
      const reason = reasonFor(filename, content)
      if (reason) {
        replaced.push({ entity: leaf, removed: { filename, reason } })
        break
      }
    }
  }
  if (!replaced.length) return null
  const removed = replaced.map((r) => r.removed)

  /** The bytes of [from, to) with every removed part in it replaced by its warning. */
  const rewrite = (from: number, to: number): Buffer[] => {
    const out: Buffer[] = []
    let at = from
    for (const r of replaced) {
      if (r.entity.start < from || r.entity.end > to) continue
      out.push(raw.subarray(at, r.entity.start), warningAttachment(r.removed))
      at = r.entity.end
    }
    out.push(raw.subarray(at, to))
    return out
  }

  if (top.contentType === 'multipart/mixed' && top.boundary && top.children.length && !replaced.some((r) => r.entity === top)) {
    // The warning goes in as the first part; the parts that were there follow unchanged.
    const first = top.children[0].start
    return {
      raw: Buffer.concat([...rewrite(0, first), warningBlock(removed), Buffer.from(`\r\n--${top.boundary}\r\n`, 'latin1'), ...rewrite(first, raw.length)]),
      removed,
    }
  }
  // Otherwise a new multipart/mixed around the warning and what the message was.
  const fields = headerFields(raw.toString('latin1', top.start, top.headerEnd))
  const isContent = (f: string) => /^content-/i.test(f)
  const outer = fields.filter((f) => !isContent(f))
  const inner = fields.filter(isContent)
  const boundary = `moat-${crypto.randomBytes(12).toString('hex')}`
  if (!outer.some((f) => /^mime-version\s*:/i.test(f))) outer.push('MIME-Version: 1.0')
  outer.push(`Content-Type: multipart/mixed; boundary="${boundary}"`)
  const original = replaced.some((r) => r.entity === top)
    ? [warningAttachment(removed[0])]
    : [Buffer.from(inner.length ? `${inner.join('\r\n')}\r\n` : '', 'latin1'), CRLF, ...rewrite(top.bodyStart, raw.length)]
  return {
    raw: Buffer.concat([
      Buffer.from(`${outer.join('\r\n')}\r\n\r\n--${boundary}\r\n`, 'latin1'),
      warningBlock(removed),
      Buffer.from(`\r\n--${boundary}\r\n`, 'latin1'),
      ...original,
      Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
    ]),
    removed,
  }
}
