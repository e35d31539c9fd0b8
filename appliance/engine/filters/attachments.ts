/*
 * Dangerous attachments, by what they are (magic bytes) as well as what they are called,
 * including inside ZIP archives (nested), with limits against zip bombs.
 *
 * Trusts nothing: names and archive headers are attacker-chosen. Archives are listed before
 * anything is decompressed, and decompression stops at the limits below.
 */
import { unzipSync } from 'fflate'
import type { ParsedMessage } from '../message'
import type { Symbol } from '../symbols'

export const LIMITS = { depth: 3, entries: 1000, totalBytes: 100 * 1024 * 1024, ratio: 100, inspectBytes: 20 * 1024 * 1024 }

const DANGEROUS_EXT = new Set(
  'exe scr com pif bat cmd js jse vbs vbe wsf wsh hta ps1 psm1 psc1 lnk iso img vhd vhdx msi msp mst jar cpl reg scf dll sys application gadget chm inf appx msix appxbundle msixbundle xll xlam ppam one'.split(' '),
)
// Abused, but also sent innocently (a 2002 ham in the corpus carries a .url shortcut):
// scored, not alone enough for the quarantine.
const RISKY_EXT = new Set('url website settingcontent-ms svg'.split(' '))
const MACRO_EXT = new Set('docm dotm xlsm xltm xlsb pptm potm ppsm'.split(' '))
const DECOY_EXT = /\.(pdf|docx?|xlsx?|pptx?|rtf|txt|jpe?g|png|gif|zip|html?)\.[a-z0-9]{2,5}$/i

function ext(name: string): string {
  return /\.([a-z0-9]{1,10})$/i.exec(name.trim())?.[1].toLowerCase() ?? ''
}

function startsWith(b: Uint8Array, bytes: number[], at = 0): boolean {
  if (b.length < at + bytes.length) return false
  return bytes.every((x, i) => b[at + i] === x)
}

const isZip = (b: Uint8Array) => startsWith(b, [0x50, 0x4b, 0x03, 0x04])
const isPe = (b: Uint8Array) => startsWith(b, [0x4d, 0x5a])
const isElf = (b: Uint8Array) => startsWith(b, [0x7f, 0x45, 0x4c, 0x46])
const isLnk = (b: Uint8Array) => startsWith(b, [0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0])
const isIso = (b: Uint8Array) => startsWith(b, [0x43, 0x44, 0x30, 0x30, 0x31], 0x8001)

/** ZIP central directory: is any entry encrypted (general purpose flag bit 0)? */
function zipHasEncryptedEntry(b: Uint8Array): boolean {
  const view = Buffer.from(b.buffer, b.byteOffset, b.byteLength)
  for (let i = view.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); i !== -1 && i + 10 <= view.length; i = view.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), i + 4)) {
    if (view.readUInt16LE(i + 8) & 1) return true
  }
  return false
}

interface Finding {
  name: string
  detail: string
}

function inspect(name: string, bytes: Uint8Array, depth: number, where: string, out: Finding[]): void {
  const label = where ? `${name} in ${where}` : name
  const e = ext(name)
  if (isPe(bytes) || isElf(bytes)) out.push({ name: 'ATTACH_EXECUTABLE', detail: `${label}: executable content` })
  if (isLnk(bytes)) out.push({ name: 'ATTACH_EXECUTABLE', detail: `${label}: Windows shortcut` })
  if (isIso(bytes)) out.push({ name: 'ATTACH_DANGEROUS_EXT', detail: `${label}: disk image` })
  if (DANGEROUS_EXT.has(e)) out.push({ name: 'ATTACH_DANGEROUS_EXT', detail: `${label}: .${e}` })
  if (RISKY_EXT.has(e)) out.push({ name: 'ATTACH_RISKY_EXT', detail: `${label}: .${e}` })
  if (MACRO_EXT.has(e)) out.push({ name: 'ATTACH_MACRO', detail: `${label}: macro-enabled Office file` })
  if (DECOY_EXT.test(name) && (DANGEROUS_EXT.has(e) || isPe(bytes))) out.push({ name: 'ATTACH_DOUBLE_EXT', detail: label })
  if (!isZip(bytes)) return
  if (depth >= LIMITS.depth) {
    out.push({ name: 'ATTACH_ARCHIVE_TOO_DEEP', detail: `${label}: archives nested deeper than ${LIMITS.depth}` })
    return
  }
  if (zipHasEncryptedEntry(bytes)) out.push({ name: 'ATTACH_ENCRYPTED_ARCHIVE', detail: label })
  let entries = 0
  let total = 0
  let bomb = ''
  const listing: { name: string; size: number; originalSize: number }[] = []
  let files: Record<string, Uint8Array> = {}
  try {
    files = unzipSync(bytes, {
      filter(f) {
        entries++
        total += f.originalSize
        listing.push(f)
        if (entries > LIMITS.entries) bomb = `more than ${LIMITS.entries} entries`
        else if (total > LIMITS.totalBytes) bomb = `more than ${LIMITS.totalBytes} bytes uncompressed`
        else if (f.size > 0 && f.originalSize / f.size > LIMITS.ratio && f.originalSize > 1024 * 1024) bomb = `compression ratio over ${LIMITS.ratio}`
        // Only what the checks need is decompressed: nested archives and executables' heads.
        return !bomb && f.originalSize <= LIMITS.inspectBytes
      },
    })
  } catch {
    // Encrypted or damaged entries cannot be read; names still count below.
  }
  if (bomb) {
    out.push({ name: 'ATTACH_ZIP_BOMB', detail: `${label}: ${bomb}` })
    return
  }
  const names = listing.map((f) => f.name)
  // A Java archive under another name (.jar is caught by its extension above).
  if (e !== 'jar' && names.some((n) => n.toLowerCase() === 'meta-inf/manifest.mf')) {
    out.push({ name: 'ATTACH_DANGEROUS_EXT', detail: `${label}: Java archive` })
  }
  if (names.some((n) => /(^|\/)vbaProject\.bin$/i.test(n))) out.push({ name: 'ATTACH_MACRO', detail: `${label}: Office macros` })
  for (const f of listing) {
    if (f.name.endsWith('/')) continue
    inspect(f.name, files[f.name] ?? new Uint8Array(0), depth + 1, label, out)
  }
}

/** Symbols that make an attachment one to remove (strip) rather than only a score. */
export const STRIPPABLE = new Set(['ATTACH_EXECUTABLE', 'ATTACH_DANGEROUS_EXT', 'ATTACH_DOUBLE_EXT', 'ATTACH_ZIP_BOMB', 'ATTACH_MACRO'])

/** Why one attachment must be removed, or null: the first strippable finding's detail. */
export function strippableFinding(filename: string, content: Uint8Array): string | null {
  const findings: Finding[] = []
  inspect(filename, content, 0, '', findings)
  return findings.find((f) => STRIPPABLE.has(f.name))?.detail ?? null
}

export function attachmentSymbols(msg: ParsedMessage): Symbol[] {
  const findings: Finding[] = []
  for (const a of msg.attachments) inspect(a.filename ?? '(unnamed)', a.content, 0, '', findings)
  // One symbol per kind, with every finding of that kind in its detail.
  const byName = new Map<string, string[]>()
  for (const f of findings) byName.set(f.name, [...(byName.get(f.name) ?? []), f.detail])
  return [...byName].map(([name, details]) => ({ name, detail: [...new Set(details)].slice(0, 5).join('; ') }))
}
