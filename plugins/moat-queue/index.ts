/*
 * moat-queue: makes an accepted message durable and routes it per recipient: clean mail to
 * the delivery outbox, spam and surespam to the recipient's quarantine (or, for a domain in
 * tag mode, to the outbox with X-Moat-* headers). Outbound spam goes to the outbound
 * quarantine of its sender, never bounced (the sender may be forged). Every message is
 * archived, with its direction.
 *
 * Hooks: queue, queue_outbound. Config: moat-queue.ini (none yet).
 * Durability: answers OK (so Haraka says 250) only after MailStore.accept resolved, i.e.
 *   after the spool file and its directory were fsynced and the rows were committed with
 *   synchronous=FULL. Anything failing before that is a 451/452, never a 250.
 * Untrusted input: envelope, headers (stored as text, never interpreted).
 */
import { constants, DSN, moatNotes, parsedMessage, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'
import type { OrgPart, RecipientAction } from '../../appliance/services/mail-store'
import { kickOutbox } from '../../appliance/smtp/delivery'

export function register(this: HarakaPlugin): void {
  this.register_hook('queue', 'store')
  // Haraka sends a relaying client's mail to queue_outbound instead of queue (and, with no
  // plugin there, straight to its outbound queue, unscanned and unarchived).
  this.register_hook('queue_outbound', 'store')
}

export function store(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  this.store_async(connection).then(
    (queueId: string) => {
      next(constants.OK, `Message accepted as ${queueId}`)
      kickOutbox()
    },
    (err: NodeJS.ErrnoException) => {
      connection.logerror(`moat-queue: could not store message: ${err?.stack || err}`)
      if (err?.code === 'ENOSPC' || err?.code === 'SQLITE_FULL') {
        next(constants.DENYSOFT, DSN.create(452, 'Insufficient system storage, please try again later', 3, 1))
      } else {
        next(constants.DENYSOFT, DSN.create(451, 'Temporary local problem, please try again later', 3, 0))
      }
    },
  )
}

export async function store_async(this: HarakaPlugin, connection: HarakaConnection): Promise<string> {
  const txn = connection.transaction!
  const notes = moatNotes(txn)
  const [raw, parsed] = await Promise.all([rawMessage(txn), parsedMessage(txn)])
  const parts = new Map<number, OrgPart>()
  for (const r of notes.rcpts) {
    const v = notes.verdicts[r.orgId]
    if (!v) throw new Error(`no verdict for organisation ${r.orgId}: is moat-scorer loaded?`)
    let part = parts.get(r.orgId)
    if (!part) {
      parts.set(r.orgId, (part = { orgId: r.orgId, verdict: v.verdict, score: v.score, symbols: v.symbols, reason: v.reason, stripped: !!v.stripped, rcpts: [] }))
    }
    let action: RecipientAction = r.tagMode || v.tag ? 'tag' : v.verdict === 'clean' ? 'deliver' : 'quarantine'
    // The recipient's (or its organisation's) own lists decide over the score (moat-lists
    // never allows what carries a virus or a dangerous attachment).
    const listed = notes.listed?.[r.address]
    let reason = v.reason
    if (listed === 'block') [action, reason] = ['quarantine', v.verdict === 'clean' ? 'blocked' : v.reason]
    else if (listed === 'allow' && action === 'quarantine') action = 'deliver'
    part.rcpts.push({ address: r.address, userId: r.userId, action, reason })
  }
  const queueId = txn.uuid
  await runtime().store.accept({
    queueId,
    direction: notes.outbound ? 'out' : 'in',
    senderLogin: notes.outbound?.login ?? null,
    raw,
    receivedAt: Date.now(),
    clientIp: connection.remote.ip,
    helo: connection.hello.host ?? null,
    mailFrom: txn.mail_from.address || '',
    fromHeader: parsed.from ? (parsed.from.name ? `${parsed.from.name} <${parsed.from.address}>` : parsed.from.address) : null,
    subject: parsed.subject || null,
    messageIdHeader: parsed.messageId,
    authResults: txn.notes.moat_auth_results ?? null,
    bodyText: [parsed.text, ...parsed.attachments.map((a) => a.filename ?? '')].join('\n'),
    strippedRaw: notes.stripped?.raw ?? null,
    parts: [...parts.values()],
  })
  return queueId
}
