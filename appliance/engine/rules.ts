/*
 * The outbreak rule language: who (sender, recipient, direction) + what (a tree of
 * conditions over the message and the symbols other filters raised) + action. Rules are
 * data (JSON in the rules table), so an admin changes them without a release.
 *
 * Trusts: rule text comes from admins; regular expressions are compiled once per rule
 * version and a rule that does not compile is reported, never run. Messages are hostile:
 * conditions only read, and text is bounded before any regex runs on it.
 */
import type { ParsedMessage } from './message'
import { urlHost } from './message'
import type { Symbol } from './symbols'

export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | { subject: string }
  | { body: string }
  | { fromName: string }
  | { fromAddress: string }
  | { fromDomain: string }
  | { header: string; matches: string }
  | { url: string }
  | { attachment: string }
  /** who: the envelope sender, or any envelope recipient (address or domain, as a regex) */
  | { sender: string }
  | { recipient: string }
  | { symbol: string }
  | { authenticatedAs: string }
  | { extract: string; notMatching: string }
  /** The sender callback's answer about the envelope sender (see services/callback.ts). */
  | { callback: 'valid' | 'invalid' | 'unknown' }

export interface RuleInput {
  msg: ParsedMessage
  mailFrom: string
  /** envelope recipients */
  rcpts?: string[]
  symbols: Symbol[]
  /** Filled in by the caller only when an active rule asks for it. */
  callback?: 'valid' | 'invalid' | 'unknown'
}

const MAX_TEXT = 200_000

function re(pattern: string): RegExp {
  return new RegExp(pattern, 'i')
}

/**
 * The attachment patterns a condition matches on (outside any "not"): what a strip rule
 * removes. A strip rule without one removes nothing.
 */
export function attachmentPatterns(c: Condition): RegExp[] {
  if ('all' in c) return c.all.flatMap(attachmentPatterns)
  if ('any' in c) return c.any.flatMap(attachmentPatterns)
  if ('attachment' in c) return [re(c.attachment)]
  return []
}

/** Throws on a condition that is not of the language (or a regex that does not compile). */
export function validateCondition(c: unknown): Condition {
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new Error(`condition must be an object, got ${JSON.stringify(c)}`)
  const o = c as Record<string, unknown>
  const keys = Object.keys(o)
  if (o.all || o.any) {
    const list = (o.all ?? o.any) as unknown
    if (!Array.isArray(list) || !list.length) throw new Error('all/any want a non-empty list')
    list.forEach(validateCondition)
  } else if (o.not) validateCondition(o.not)
  else if ('extract' in o) {
    re(String(o.extract))
    re(String(o.notMatching))
  } else if ('header' in o) re(String(o.matches))
  else if (keys.length === 1 && ['subject', 'body', 'fromName', 'fromAddress', 'fromDomain', 'url', 'attachment', 'sender', 'recipient'].includes(keys[0])) re(String(o[keys[0]]))
  else if ('callback' in o) {
    if (!['valid', 'invalid', 'unknown'].includes(String(o.callback))) throw new Error('callback wants valid, invalid or unknown')
  } else if (keys.length === 1 && ['symbol', 'authenticatedAs'].includes(keys[0])) {
    if (typeof o[keys[0]] !== 'string') throw new Error(`${keys[0]} wants a string`)
  } else throw new Error(`unknown condition ${JSON.stringify(c)}`)
  return c as Condition
}

/** Does the message authenticate as `domain` (DMARC pass for it, or aligned DKIM or SPF)? */
function authenticatedAs(input: RuleInput, domain: string): boolean {
  const d = domain.toLowerCase()
  const under = (host: string | undefined) => !!host && (host.toLowerCase() === d || host.toLowerCase().endsWith(`.${d}`))
  for (const s of input.symbols) {
    if (s.name === 'DKIM_PASS' && under(s.detail?.split(' ')[0])) return true
    if (s.name === 'DMARC_PASS' && under(s.detail)) return true
  }
  const envelopeDomain = input.mailFrom.split('@')[1]
  return input.symbols.some((s) => s.name === 'SPF_PASS') && under(envelopeDomain) && under(input.msg.from?.address.split('@')[1])
}

export function evaluate(c: Condition, input: RuleInput): boolean {
  const { msg } = input
  if ('all' in c) return c.all.every((x) => evaluate(x, input))
  if ('any' in c) return c.any.some((x) => evaluate(x, input))
  if ('not' in c) return !evaluate(c.not, input)
  if ('subject' in c) return re(c.subject).test(msg.subject)
  if ('body' in c) return re(c.body).test(msg.text.slice(0, MAX_TEXT)) || re(c.body).test(msg.htmlText.slice(0, MAX_TEXT))
  if ('fromName' in c) return re(c.fromName).test(msg.from?.name ?? '')
  if ('fromAddress' in c) return re(c.fromAddress).test(msg.from?.address ?? '')
  if ('fromDomain' in c) return re(c.fromDomain).test(msg.from?.address.split('@')[1] ?? '')
  if ('header' in c) return (msg.headers.get(c.header.toLowerCase()) ?? []).some((v) => re(c.matches).test(v))
  if ('url' in c) return msg.urls.some((u) => re(c.url).test(u) || re(c.url).test(urlHost(u) ?? ''))
  if ('attachment' in c) return msg.attachments.some((a) => re(c.attachment).test(a.filename ?? ''))
  if ('sender' in c) return re(c.sender).test(input.mailFrom)
  if ('recipient' in c) return (input.rcpts ?? []).some((r) => re(c.recipient).test(r))
  if ('symbol' in c) return input.symbols.some((s) => s.name === c.symbol)
  if ('authenticatedAs' in c) return authenticatedAs(input, c.authenticatedAs)
  if ('callback' in c) return input.callback === c.callback
  if ('extract' in c) {
    const found = [...`${msg.subject}\n${msg.text.slice(0, MAX_TEXT)}`.matchAll(new RegExp(c.extract, 'gi'))].map((m) => m[m.length - 1] ?? m[0]) // the last group is the value
    return found.some((v) => !re(c.notMatching).test(v))
  }
  return false
}
