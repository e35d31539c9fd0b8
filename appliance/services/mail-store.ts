/*
 * Accepting a message: the one place where "250 OK" is earned. The raw bytes, the message
 * rows, quarantine entries, delivery outbox rows and the archive index are committed in one
 * group-committed transaction (large messages' bytes go to a fsynced spool file first).
 * Only after that may the SMTP layer answer 250; any failure rejects and the caller answers 4xx.
 */
import type { GroupCommitter } from '../db/group-commit'
import type { Db } from '../db/database'
import type { ScoredSymbol, Verdict } from '../engine/symbols'
import type { RawStore } from './raw-store'
import { OutboundSenders } from './outbound-senders'

export type RecipientAction = 'deliver' | 'tag' | 'quarantine'
export type QuarantineReason = 'score' | 'virus' | 'attachment' | 'backscatter' | 'blocked'

export interface AcceptedRecipient {
  address: string
  userId: number | null
  action: RecipientAction
  /** why, when action is quarantine (default: the part's reason) */
  reason?: QuarantineReason
}

export interface OrgPart {
  orgId: number
  verdict: Verdict
  score: number
  symbols: ScoredSymbol[]
  /** why its quarantined recipients are there */
  reason?: QuarantineReason
  /** recipients who get mail get the stripped copy, and the original stays in their quarantine */
  stripped?: boolean
  rcpts: AcceptedRecipient[]
}

export interface AcceptInput {
  queueId: string
  direction: 'in' | 'out'
  raw: Buffer
  receivedAt: number
  clientIp: string | null
  helo: string | null
  mailFrom: string
  fromHeader: string | null
  subject: string | null
  messageIdHeader: string | null
  /** Authentication-Results value written on acceptance (added to the message on delivery). */
  authResults?: string | null
  /** Outbound only: the SMTP AUTH login, or null for a registered mail server. */
  senderLogin?: string | null
  /** Decoded text for the archive's full-text index. */
  bodyText: string
  /** The copy without its dangerous attachments, for parts with `stripped`. */
  strippedRaw?: Buffer | null
  parts: OrgPart[]
}

export interface AcceptResult {
  rawId: number
  messageIds: number[]
  deliveryIds: number[]
  quarantineIds: number[]
}

const MAX_INDEXED_BODY = 200_000

export class MailStore {
  private readonly q
  private readonly senders: OutboundSenders

  constructor(
    db: Db,
    private readonly raws: RawStore,
    private readonly committer: GroupCommitter,
  ) {
    this.senders = new OutboundSenders(db)
    this.q = {
      insertMessage: db.prepare(
        `INSERT INTO messages (org_id, raw_id, direction, received_at, queue_id, client_ip, helo, mail_from, rcpt_to,
           from_header, subject, message_id_header, size, verdict, score, symbols, auth_results, sender_login, delivered_raw_id)
         VALUES (@org_id, @raw_id, @direction, @received_at, @queue_id, @client_ip, @helo, @mail_from, @rcpt_to,
           @from_header, @subject, @message_id_header, @size, @verdict, @score, @symbols, @auth_results, @sender_login, @delivered_raw_id)`,
      ),
      insertFts: db.prepare(`INSERT INTO archive_fts (rowid, sender, recipients, subject, body) VALUES (?, ?, ?, ?, ?)`),
      insertQuarantine: db.prepare(
        `INSERT INTO quarantine (org_id, message_id, rcpt, user_id, verdict, created_at, direction, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertDelivery: db.prepare(
        `INSERT INTO deliveries (org_id, message_id, rcpt, reason, created_at, updated_at, held) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
    }
  }

  async accept(input: AcceptInput): Promise<AcceptResult> {
    const prepared = await this.raws.prepare(input.raw, input.queueId, new Date(input.receivedAt))
    const strips = input.strippedRaw && input.parts.some((p) => p.stripped)
    const preparedStripped = strips ? await this.raws.prepare(input.strippedRaw!, `${input.queueId}.stripped`, new Date(input.receivedAt)) : null
    const body = input.bodyText.slice(0, MAX_INDEXED_BODY)
    try {
      return await this.committer.submit(() => {
        const rawId = this.raws.insert(prepared)
        const strippedId = preparedStripped ? this.raws.insert(preparedStripped) : null
        const result: AcceptResult = { rawId, messageIds: [], deliveryIds: [], quarantineIds: [] }
        for (const part of input.parts) {
          const rcptList = part.rcpts.map((r) => r.address).join(', ')
          const info = this.q.insertMessage.run({
            org_id: part.orgId,
            raw_id: rawId,
            direction: input.direction,
            received_at: input.receivedAt,
            queue_id: input.queueId,
            client_ip: input.clientIp,
            helo: input.helo,
            mail_from: input.mailFrom,
            rcpt_to: rcptList,
            from_header: input.fromHeader,
            subject: input.subject,
            message_id_header: input.messageIdHeader,
            size: input.raw.length,
            verdict: part.verdict,
            score: part.score,
            symbols: JSON.stringify(part.symbols),
            auth_results: input.authResults ?? null,
            sender_login: input.senderLogin ?? null,
            delivered_raw_id: part.stripped ? strippedId : null,
          })
          const messageId = Number(info.lastInsertRowid)
          result.messageIds.push(messageId)
          this.q.insertFts.run(messageId, `${input.mailFrom} ${input.fromHeader ?? ''}`, rcptList, input.subject ?? '', body)
          // Outbound: count the sender and hold it when it goes over its organisation's limits.
          const held =
            input.direction === 'out' &&
            this.senders.record(part.orgId, input.senderLogin || input.mailFrom || 'MAILER-DAEMON', part.verdict !== 'clean', input.receivedAt).held
          const quarantine = (r: AcceptedRecipient, verdict: 'spam' | 'surespam', reason: QuarantineReason) => {
            const q = this.q.insertQuarantine.run(part.orgId, messageId, r.address, r.userId, verdict, input.receivedAt, input.direction, reason)
            result.quarantineIds.push(Number(q.lastInsertRowid))
          }
          for (const r of part.rcpts) {
            if (r.action === 'quarantine') {
              quarantine(r, part.verdict === 'clean' ? 'spam' : part.verdict, r.reason ?? part.reason ?? 'score')
            } else {
              // The original, attachments and all, stays where only an administrator can release it.
              if (part.stripped && strippedId !== null) quarantine(r, 'surespam', 'attachment')
              const d = this.q.insertDelivery.run(
                part.orgId, messageId, r.address, r.action === 'tag' ? 'tagged' : 'clean', input.receivedAt, input.receivedAt, held ? 1 : 0,
              )
              result.deliveryIds.push(Number(d.lastInsertRowid))
            }
          }
        }
        return result
      })
    } catch (err) {
      // Nothing refers to a spool file written for it; do not leave an orphan.
      await this.raws.discard(prepared)
      if (preparedStripped) await this.raws.discard(preparedStripped)
      throw err
    }
  }
}
