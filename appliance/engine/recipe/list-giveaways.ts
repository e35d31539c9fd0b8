/*
 * What a mailing list adds to every message it carries, removed before the message teaches
 * the default model. The 2019–2026 list mail of the corpus (ham and the spam that reached the
 * lists) went through a list server and an archive; a customer's mailbox gets none of that.
 * Left in, the model learns "came through a list" (mostly ham) instead of what spam says.
 *
 * Removed, for mail of a list source only:
 * - the list's header fields: List-*, X-Mailing-List, Mailing-List, Precedence, Sender,
 *   Errors-To, X-BeenThere, X-Mailman-*, X-Loop, X-Google-Group-Id, X-Original-* (the list's
 *   copies of what it rewrote), and the subscriber's Delivered-To / X-Original-To;
 * - Return-Path (the list's bounce address, not the author's), and a Reply-To that names the list;
 * - the Received hops from the list server on (the list's and the archive's own), found as
 *   the earliest hop that names the list, its bounce address or the archive;
 * - the "[list] " tag in the subject;
 * - "Name via List <list@host>" From rewriting (DMARC mitigation): the author's address comes
 *   back from X-Original-From, or from a lone Reply-To; otherwise only " via List" goes;
 * - the list footer (Mailman's "___ list mailing list" block, Google Groups' "You received
 *   this message because…" block), in the text, the HTML, a footer part of its own, and the
 *   footer's links, and the same footers quoted in replies.
 *
 * Trusts nothing in the message; works on the parsed message only, never on bytes that are
 * stored or delivered (this runs for training and benchmarks, not on the SMTP path).
 */
import { domainOf, type ParsedMessage, urlHost } from '../message'

const LIST_HEADERS =
  /^(list-|x-mailing-list$|mailing-list$|precedence$|sender$|errors-to$|x-beenthere$|x-mailman-|x-loop$|x-google-group-id$|x-original-|delivered-to$|x-original-to$|return-path$|x-list|x-ml-|x-spam-checked-in-group$)/

// Mailman 2 and 3 footers start with a rule of underscores and name the list; Google Groups'
// with the signature dashes and "You received this message because you are subscribed".
const FOOTERS = [
  /(?:\r?\n|^)[ \t]*_{20,}[ \t]*\r?\n[^\n]{0,120}(mailing list|mailman|listinfo)[\s\S]*$/i,
  /(?:\r?\n|^)(?:-- ?\r?\n)?[ \t]*You received this message because you are subscribed to the Google Groups[\s\S]*$/i,
]
const HTML_FOOTERS = [
  /(<[^>]+>\s*)*_{20,}(<[^>]*>|\s)*[^<]{0,120}(mailing list|mailman)[\s\S]*$/i,
  /(<[^>]+>\s*)*(--\s*(<[^>]*>\s*)*)?You received this message because you are subscribed to the Google Groups[\s\S]*$/i,
]

// The same footers quoted in replies ("> You received this message…"), line by line.
const QUOTED_FOOTER_LINE =
  /^[> \t]*(?:.*(?:You received this message because you are subscribed|Google Groups|To unsubscribe from this group|To post to this group|To view this discussion|For more options, visit|\+unsubscribe@googlegroups\.com|groups\.google\.com\/|\/listinfo\/|\/mailman\/)|[^\n]{0,60}mailing list(\s*$|\s+--\s)|_{20,}\s*$).*$/gim

export interface ListSource {
  /** The corpus source name: the list's address with its first dot for the @ (usrp-users.lists.ettus.com). */
  source: string
  /** The list's name as tags and "via" rewriting show it, lower case (usrp-users). */
  name: string
  /** The list server's host (lists.ettus.com, googlegroups.com). */
  host: string
}

export function listSource(source: string): ListSource {
  const dot = source.indexOf('.')
  return { source, name: source.slice(0, dot).toLowerCase(), host: source.slice(dot + 1).toLowerCase() }
}

function cutFooter(text: string, patterns: RegExp[], quoted = true): { text: string; footer: string } {
  let footer = ''
  for (const re of patterns) {
    const m = re.exec(text)
    if (!m) continue
    text = text.slice(0, m.index)
    footer = m[0]
    break
  }
  return { text: quoted ? text.replace(QUOTED_FOOTER_LINE, '') : text, footer }
}

/** The subject without the list's "[name]" tag (also after "Re: "). */
export function untagSubject(subject: string, list: ListSource): string {
  const tag = new RegExp(`\\[${list.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\]\\s*`, 'i')
  return subject.replace(tag, '').trim()
}

/** The index (in message order, newest first) of the earliest Received hop the list or archive added, or -1. */
function listHop(received: string[], list: ListSource): number {
  const marks = [list.host, `${list.name}@`, `${list.name}-bounces`, `${list.name}-owner`, 'listexpand', 'lfdr.de']
  for (let i = received.length - 1; i >= 0; i--) {
    const r = received[i].toLowerCase()
    if (marks.some((m) => r.includes(m))) return i
  }
  return -1
}

export function stripListGiveaways(msg: ParsedMessage, list: ListSource): ParsedMessage {
  const headers = new Map<string, string[]>()
  for (const [k, v] of msg.headers) if (!LIST_HEADERS.test(k)) headers.set(k, v)
  const received = msg.headers.get('received') ?? []
  const hop = listHop(received, list)
  if (hop >= 0) {
    const kept = received.slice(hop + 1)
    if (kept.length) headers.set('received', kept)
    else headers.delete('received')
  }

  // Lists that set Reply-To to themselves say so about the list, not the author.
  const ownAddress = (a: string) => a.startsWith(`${list.name}@`) || domainOf(a).endsWith(list.host)
  const replyTo = msg.replyTo.filter((a) => !ownAddress(a))
  if (replyTo.length !== msg.replyTo.length) {
    if (replyTo.length) headers.set('reply-to', [replyTo.join(', ')])
    else headers.delete('reply-to')
  }
  const subject = untagSubject(msg.subject, list)
  if (headers.has('subject')) headers.set('subject', [subject])

  let from = msg.from
  const via = from && /\s+via\s+\S+\s*$/i.exec(from.name)
  if (from && via && (domainOf(from.address).endsWith(list.host) || from.address.startsWith(`${list.name}@`))) {
    const original = /<([^<>\s]+@[^<>\s]+)>|(\S+@\S+)/.exec(msg.headers.get('x-original-from')?.[0] ?? '')
    const author = original ? (original[1] ?? original[2]).toLowerCase() : msg.replyTo.length === 1 && !msg.replyTo[0].startsWith(`${list.name}@`) ? msg.replyTo[0] : null
    from = { name: from.name.slice(0, via.index).replace(/^['"]|['"]$/g, ''), address: author ?? from.address }
    headers.set('from', [from.name ? `${from.name} <${from.address}>` : from.address])
  }

  const text = cutFooter(msg.text, FOOTERS)
  const htmlText = cutFooter(msg.htmlText, FOOTERS)
  const html = cutFooter(msg.html, HTML_FOOTERS, false)
  const footerText = text.footer + htmlText.footer + html.footer
  const inFooter = (url: string) => footerText.includes(url) || (urlHost(url) ?? '').endsWith(list.host) || urlHost(url) === 'groups.google.com'
  // Mailman puts its footer in a part of its own when the message has several.
  const attachments = msg.attachments.filter((a) => !(a.mimeType === 'text/plain' && a.size < 2000 && cutFooter(Buffer.from(a.content).toString('utf8'), FOOTERS).footer))
  return {
    ...msg,
    headers,
    from,
    subject,
    replyTo,
    text: text.text,
    htmlText: htmlText.text,
    html: html.text,
    links: msg.links.filter((l) => !inFooter(l.href)),
    urls: msg.urls.filter((u) => !inFooter(u)),
    attachments,
  }
}
