/*
 * Top-level domains where spam and phishing register most of their throw-away names: cheap,
 * bulk-registered, rarely used by an established business. A sender or a link there is weak
 * evidence on its own (real shops live on .shop too), so the weights table gives it points,
 * never a verdict. The list joins SpamAssassin's SUSP_NTLD list (72_active.cf, Apache-2.0)
 * with the TLDs in Spamhaus's published "most abused TLDs" rankings and the old free
 * Freenom TLDs; it is not drawn from the corpus the weights are fitted on.
 */
import { registeredDomain } from '../../services/dnsbl'
import { domainOf, type ParsedMessage, urlHost } from '../message'
import type { Symbol } from '../symbols'

export const ABUSED_TLDS: ReadonlySet<string> = new Set([
  // SpamAssassin SUSP_NTLD
  'icu', 'online', 'work', 'date', 'top', 'fun', 'life', 'review', 'bid', 'stream', 'gdn', 'click', 'world', 'fit', 'ooo', 'faith', 'buzz', 'trade', 'cyou', 'vip',
  // Spamhaus's most abused TLDs
  'xyz', 'shop', 'cfd', 'sbs', 'bond', 'live', 'site', 'store', 'rest', 'lol', 'beauty', 'hair', 'skin', 'makeup', 'quest', 'autos', 'boats', 'homes', 'yachts', 'motorcycles', 'mom', 'monster', 'win', 'loan', 'racing', 'download', 'party', 'science', 'men', 'cricket', 'accountant', 'best', 'zip', 'mov',
  // Freenom's free TLDs, abandoned to abuse
  'tk', 'ml', 'ga', 'cf', 'gq',
])

// Both registeredDomain() and urlHost() give lower case without a trailing dot.
const tldOf = (host: string) => host.slice(host.lastIndexOf('.') + 1)

export function abusedTldChecks(msg: ParsedMessage): Symbol[] {
  const out: Symbol[] = []
  const fromDomain = msg.from ? domainOf(msg.from.address) : ''
  const org = fromDomain ? registeredDomain(fromDomain) : null
  if (org && ABUSED_TLDS.has(tldOf(org))) out.push({ name: 'FROM_ABUSED_TLD', detail: fromDomain })
  // A sender's links to its own domain say nothing new; links elsewhere, on such a TLD, do.
  for (const url of msg.urls.slice(0, 200)) {
    const host = urlHost(url)
    if (!host || !ABUSED_TLDS.has(tldOf(host))) continue
    const linked = registeredDomain(host)
    if (linked && linked !== org) {
      out.push({ name: 'URL_ABUSED_TLD', detail: host })
      break
    }
  }
  return out
}
