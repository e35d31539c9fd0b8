/*
 * The small slice of Haraka's plugin API that Moat's plugins use, typed, plus helpers that
 * every filter needs: the raw message and its one shared parse.
 */
import type { ParsedMessage } from '../engine/message'
import { parseMessage } from '../engine/message'
import type { ScoredSymbol, Symbol, Verdict } from '../engine/symbols'
import type { QuarantineReason } from '../services/mail-store'
import type { Organisation } from '../services/tenants'
import { runtime } from './runtime'

export type Next = (code?: number, msg?: unknown) => void

export interface HarakaAddress {
  user: string
  host: string
  original: string
  address: string
}

export interface HarakaResults {
  add(plugin: unknown, obj: Record<string, unknown>): void
  push(plugin: unknown, obj: Record<string, unknown>): void
  get(plugin: unknown): Record<string, unknown> | undefined
  get_all(): Record<string, Record<string, unknown>>
}

export interface HarakaTransaction {
  uuid: string
  mail_from: HarakaAddress
  rcpt_to: HarakaAddress[]
  data_bytes: number
  notes: Record<string, any>
  results: HarakaResults
  message_stream: { get_data(cb: (data: Buffer) => void): void; get_data(opts: object, cb: (data: Buffer) => void): void }
  header: { get(name: string): string; get_all(name: string): string[] }
  add_header(name: string, value: string): void
  add_leading_header(name: string, value: string): void
  remove_header(name: string): void
}

export interface HarakaConnection {
  uuid: string
  remote: { ip: string; host?: string }
  local?: { ip: string; port: number }
  hello: { host?: string; verb?: string }
  relaying: boolean
  notes: Record<string, any>
  transaction: HarakaTransaction | null
  results: HarakaResults
  loginfo(...args: unknown[]): void
  lognotice(...args: unknown[]): void
  logerror(...args: unknown[]): void
}

export interface HarakaHmail {
  todo: { rcpt_to: HarakaAddress[]; mail_from: HarakaAddress; notes: Record<string, any>; domain: string; uuid: string }
  loginfo(...args: unknown[]): void
}

export interface HarakaPlugin {
  name: string
  register_hook(hook: string, method: string, priority?: number): void
  config: { get(name: string, type?: unknown, cb?: () => void): any }
  haraka_require(name: string): any
  loginfo(...args: unknown[]): void
  lognotice(...args: unknown[]): void
  logwarn(...args: unknown[]): void
  logerror(...args: unknown[]): void
  [key: string]: any
}

export const constants: {
  OK: number
  CONT: number
  DENY: number
  DENYSOFT: number
  DENYDISCONNECT: number
  DENYSOFTDISCONNECT: number
  STOP: number
} = require('haraka-constants')

export const DSN: {
  create(code: number, msg: string, subject?: number, detail?: number): unknown
} = require('haraka-dsn')

/** The message as received, CRLF line endings; fetched once per transaction. */
export function rawMessage(txn: HarakaTransaction): Promise<Buffer> {
  if (!txn.notes.moat_raw) {
    txn.notes.moat_raw = new Promise<Buffer>((resolve) => txn.message_stream.get_data(resolve))
  }
  return txn.notes.moat_raw
}

/** One MIME parse per transaction, shared by every filter. */
export function parsedMessage(txn: HarakaTransaction): Promise<ParsedMessage> {
  if (!txn.notes.moat_parsed) txn.notes.moat_parsed = rawMessage(txn).then(parseMessage)
  return txn.notes.moat_parsed
}

/** Records a filter's symbols where the scorer looks for them. */
export function addSymbols(txn: HarakaTransaction, plugin: HarakaPlugin, symbols: Symbol[]): void {
  txn.results.push(plugin, { symbols })
}

/** Every symbol any plugin recorded in this transaction. */
export function collectSymbols(txn: HarakaTransaction): Symbol[] {
  const out: Symbol[] = []
  for (const result of Object.values(txn.results.get_all())) {
    const s = result.symbols
    if (Array.isArray(s)) out.push(...(s as Symbol[]))
  }
  return out
}

/** Runs an async hook body; an unexpected error becomes a 4xx, never a crashed server. */
export function guarded(plugin: HarakaPlugin, next: Next, body: (next: Next) => Promise<void>): void {
  let called = false
  const once: Next = (...args) => {
    if (called) return
    called = true
    next(...args)
  }
  body(once).catch((err) => {
    plugin.logerror(`${plugin.name}: ${err?.stack || err}`)
    once(constants.DENYSOFT, DSN.create(451, 'Temporary local problem, please try again later', 3, 0))
  })
}

export interface RecipientNote {
  address: string
  orgId: number
  domainId: number
  userId: number | null
  tagMode: boolean
}

export interface OrgVerdict {
  verdict: Verdict
  score: number
  symbols: ScoredSymbol[]
  /** deliver with X-Moat-* headers whatever the verdict (the organisation's policy said tag) */
  tag?: boolean
  /** why it is quarantined when it is: the score, or what overrode it */
  reason: QuarantineReason
  /** deliver the copy without its dangerous attachments; keep the original in the quarantine */
  stripped?: boolean
}

/** Who is relaying outbound mail: set by moat-relay. */
export interface RelayNote {
  orgId: number
  /** the authenticated user; null for a registered mail server */
  userId: number | null
  via: 'network' | 'auth'
  login?: string
}

export interface MoatNotes {
  /** Set for outbound mail: every recipient is then scored with the sender's organisation. */
  outbound?: RelayNote
  rcpts: RecipientNote[]
  /** recipient -> the allow or block list entry that decides for it (set by moat-lists) */
  listed?: Record<string, 'allow' | 'block'>
  /** organisations for which this is a bounce without a valid stamp (set by moat-bounce) */
  backscatter?: number[]
  /** organisation id -> verdict under that organisation's thresholds (set by moat-scorer) */
  verdicts: Record<number, OrgVerdict>
  /**
   * The one copy of the message without the attachments that were stripped: the dangerous
   * ones (moat-attachments, for organisations whose policy strips) and those strip rules
   * matched (moat-rules, for the organisations those rules apply to).
   */
  stripped?: { raw: Buffer; removed: { filename: string; reason: string }[]; dangerous: boolean; ruleOrgs: number[] }
}

export function moatNotes(txn: HarakaTransaction): MoatNotes {
  if (!txn.notes.moat) txn.notes.moat = { rcpts: [], verdicts: {} }
  return txn.notes.moat
}

/** The organisations this message was accepted for (one per recipient organisation). */
export function recipientOrgs(txn: HarakaTransaction): Organisation[] {
  const tenants = runtime().tenants
  const out: Organisation[] = []
  for (const id of new Set(moatNotes(txn).rcpts.map((r) => r.orgId))) {
    const org = tenants.orgById(id)
    if (org) out.push(org)
  }
  return out
}

/**
 * Whether to refuse at DATA for a policy each organisation sets: only when every recipient
 * organisation asks for it (one SMTP answer serves them all; the others still get it
 * quarantined, so nobody receives what one of them refused).
 */
export function everyOrg(txn: HarakaTransaction, wants: (org: Organisation) => boolean): boolean {
  const orgs = recipientOrgs(txn)
  return orgs.length > 0 && orgs.every(wants)
}
