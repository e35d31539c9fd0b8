/*
 * Hands outbox groups to Haraka's own outbound queue (retries, deferrals and bounces are
 * Haraka's), and records what becomes of each recipient.
 *
 * The message is rebuilt from the spool file byte for byte (Haraka's stream helper decodes
 * to UTF-8, which would corrupt 8-bit mail), with our trace and, where asked, the
 * X-Moat-* verdict headers prepended, and lines over 998 octets folded (smtp/long-lines.ts).
 */
import os from 'node:os'
import { STAMP_HEADER } from '../services/bounce-keys'
import { Dkim } from '../services/dkim'
import { type HandOffGroup, Outbox } from '../services/outbox'
import { constants, type HarakaHmail } from './haraka'
import { foldLongLines } from './long-lines'
import { runtime } from './runtime'

interface HarakaOutbound {
  send_trans_email(txn: any, cb: (code: number, msg: string) => void): void
}

let outbox: Outbox | null = null

export function kickOutbox(): void {
  outbox?.kick()
}

function rfc2822Date(t: number): string {
  return new Date(t).toUTCString().replace('GMT', '+0000')
}

function headerSafe(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 900)
}

export function traceHeaders(g: HandOffGroup, hostname: string): [string, string][] {
  const out: [string, string][] = []
  if (g.reason === 'tagged' || g.reason === 'released') {
    const names = (JSON.parse(g.symbols) as { name: string; weight: number }[]).map((s) => `${s.name}(${s.weight})`)
    out.push(['X-Moat-Verdict', g.reason === 'released' ? `${g.verdict}; released` : g.verdict])
    out.push(['X-Moat-Score', String(g.score)])
    out.push(['X-Moat-Symbols', headerSafe(names.join(' '))])
  }
  if (g.authResults && g.direction === 'in') out.push(['Authentication-Results', g.authResults])
  out.push([
    'Received',
    `from ${headerSafe(g.helo || 'unknown')} (${g.clientIp ? `[${g.clientIp}]` : 'unknown'}) by ${hostname} (Moat) with ESMTP id ${g.queueId}; ${rfc2822Date(g.receivedAt)}`,
  ])
  return out
}

/** The domain of a stored From header ("Name <a@b>" or "a@b"): the DKIM signing domain (DMARC alignment). */
export function headerDomain(from: string | null): string | null {
  const m = /@([a-z0-9.-]+)>?\s*$/i.exec(from ?? '')
  return m ? m[1].toLowerCase() : null
}

/** Splits a CRLF message into dot-stuffed wire lines, as Haraka stores received DATA. */
function* wireLines(raw: Buffer): Generator<Buffer> {
  let start = 0
  while (start < raw.length) {
    let end = raw.indexOf(10, start)
    end = end === -1 ? raw.length : end + 1
    const line = raw.subarray(start, end)
    yield line[0] === 0x2e ? Buffer.concat([Buffer.from('.'), line]) : line
    start = end
  }
}

export interface HarakaParts {
  outbound: HarakaOutbound
  transaction: { createTransaction(uuid: string | null, cfg: unknown): any }
  config: { get(name: string, ...rest: unknown[]): any }
  logerror(msg: string): void
}

export function startDelivery(haraka: HarakaParts): Outbox {
  const { outbound, config } = haraka
  const trans = haraka.transaction
  const { Address } = require('@haraka/email-address')
  const smtpIni = config.get('smtp.ini', { booleans: ['-main.strict_rfc1869'] })
  const rt = runtime()
  const hostname = (config.get('me') as string) || os.hostname()

  const dkim = new Dkim(rt.db)

  const handOff = async (g: HandOffGroup): Promise<void> => {
    // The stored message keeps its lines as received; the relayed copy must fit SMTP's 998.
    const raw = foldLongLines(rt.raws.read(g.rawId))
    const txn = trans.createTransaction(null, smtpIni)
    const isOutbound = g.direction === 'out'
    // Outbound: a BATV-tagged envelope sender and a header stamp, so that a real bounce can
    // be told from backscatter when it comes back.
    const mailFrom = isOutbound ? rt.bounceKeys.tagAddress(g.mailFrom) : g.mailFrom
    txn.mail_from = new Address(mailFrom ? `<${mailFrom}>` : '<>')
    txn.rcpt_to = [...g.rcpts.keys()].map((r) => new Address(`<${r}>`))
    txn.notes = { moat: { messageId: g.messageId, reason: g.reason, direction: g.direction, deliveries: Object.fromEntries(g.rcpts) } }
    let head = traceHeaders(g, hostname)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('')
    if (isOutbound && g.mailFrom) head = `${STAMP_HEADER}: ${rt.bounceKeys.headerStamp(g.mailFrom)}\r\n${head}`
    const signingDomain = isOutbound ? headerDomain(g.fromHeader) : null
    if (signingDomain) head = (await dkim.sign(Buffer.concat([Buffer.from(head), raw]), signingDomain)) + head
    for (const line of head.split(/(?<=\n)/)) txn.add_data(Buffer.from(line))
    for (const line of wireLines(raw)) txn.add_data(line)
    txn.message_stream.add_line_end()
    await new Promise<void>((resolve, reject) =>
      outbound.send_trans_email(txn, (code, msg) => (code === constants.OK ? resolve() : reject(new Error(`outbound refused: ${msg}`)))),
    )
  }
  outbox = new Outbox(rt.db, rt.committer, handOff, (err) => haraka.logerror(`moat outbox: ${(err as Error)?.stack || err}`))
  return outbox
}

function deliveryIds(hmail: HarakaHmail, rcpts?: { address: string; original?: string }[]): number[] {
  const map: Record<string, number> = hmail.todo.notes?.moat?.deliveries ?? {}
  const list = rcpts ?? hmail.todo.rcpt_to
  const ids: number[] = []
  for (const r of list) {
    const addr = String(r.address ?? r.original ?? r).replace(/^<|>$/g, '').toLowerCase()
    if (map[addr] !== undefined) ids.push(map[addr])
  }
  return ids
}

export function recordDelivered(hmail: HarakaHmail, response: string, okRcpts: { address: string }[]): Promise<void> {
  return outbox?.mark(deliveryIds(hmail, okRcpts), 'delivered', response, true) ?? Promise.resolve()
}

export function recordDeferred(hmail: HarakaHmail, err: unknown): Promise<void> {
  return outbox?.mark(deliveryIds(hmail), 'deferred', String(err).slice(0, 500), true) ?? Promise.resolve()
}

export function recordBounced(hmail: HarakaHmail, err: unknown): Promise<void> {
  return outbox?.mark(deliveryIds(hmail), 'bounced', String((err as Error)?.message ?? err).slice(0, 500), true) ?? Promise.resolve()
}
