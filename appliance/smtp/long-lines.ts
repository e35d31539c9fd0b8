/*
 * RFC 5321 limits a line on the wire to 998 octets plus CRLF. Moat keeps a longer line whole
 * in what it stores (the archive is the message as received) and folds only the copy it
 * relays, the way Postfix does (smtp_line_length_limit): a break is inserted as CRLF SPACE,
 * which leaves a header field one folded field and does the least harm to MIME bodies.
 */
export const MAX_LINE_OCTETS = 998

/** The message with every line over 998 octets broken; the same buffer when none is. */
export function foldLongLines(raw: Buffer, max = MAX_LINE_OCTETS): Buffer {
  const parts: Buffer[] = []
  let copied = 0
  let start = 0
  while (start < raw.length) {
    let end = raw.indexOf(10, start)
    end = end === -1 ? raw.length : end + 1
    const content = end - start - (raw[end - 1] === 10 ? 1 : 0) - (raw[end - 2] === 13 ? 1 : 0)
    if (content > max) {
      parts.push(raw.subarray(copied, start + max))
      // Each continuation starts with the inserted space, so carries one octet less.
      for (let at = start + max; at < start + content; at += max - 1) {
        parts.push(Buffer.from('\r\n '), raw.subarray(at, Math.min(at + max - 1, start + content)))
      }
      copied = start + content
    }
    start = end
  }
  if (!parts.length) return raw
  parts.push(raw.subarray(copied))
  return Buffer.concat(parts)
}
