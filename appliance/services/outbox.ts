/*
 * The delivery outbox: 'pending' rows in `deliveries` are handed to the MTA's queue, grouped
 * per message and reason. Runs in the SMTP process only; anything else (CLI, web) just adds
 * pending rows. A crash between our commit and the MTA's queue write leaves rows pending,
 * and they are handed again at the next start (at-least-once, as every MTA delivers).
 *
 * A result that cannot be recorded (the disk is full) is kept in memory and recorded again on
 * every run until it commits: a group Haraka has queued is never handed a second time because
 * its 'queued' mark failed, and a delivered message never reads 'queued' for ever.
 */
import type { Db } from '../db/database'
import type { GroupCommitter } from '../db/group-commit'

export interface HandOffGroup {
  messageId: number
  orgId: number
  direction: 'in' | 'out'
  fromHeader: string | null
  reason: 'clean' | 'tagged' | 'released'
  mailFrom: string
  rawId: number
  queueId: string
  clientIp: string | null
  helo: string | null
  receivedAt: number
  verdict: string
  score: number
  symbols: string
  authResults: string | null
  /** rcpt address -> delivery id */
  rcpts: Map<string, number>
}

export type HandOff = (group: HandOffGroup) => Promise<void>

const MAX_CONCURRENT_HANDOFFS = 16

export type DeliveryState = 'queued' | 'deferred' | 'delivered' | 'bounced'

interface Unrecorded {
  ids: number[]
  state: DeliveryState | 'pending'
  response: string | null
  attempt: boolean
  at: number
}

export class Outbox {
  private readonly q
  private readonly inFlight = new Set<number>()
  /** results whose commit failed, oldest first; their ids stay in `inFlight` until recorded */
  private unrecorded: Unrecorded[] = []
  private running = false
  private again = false

  constructor(
    private readonly db: Db,
    private readonly committer: GroupCommitter,
    private readonly handOff: HandOff,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    this.q = {
      pending: db.prepare(
        `SELECT d.id, d.message_id, d.rcpt, d.reason, m.org_id, m.direction, m.from_header, m.mail_from,
           CASE WHEN d.reason = 'released' THEN m.raw_id ELSE coalesce(m.delivered_raw_id, m.raw_id) END AS raw_id, m.queue_id, m.client_ip, m.helo,
           m.received_at, m.verdict, m.score, m.symbols, m.auth_results
         FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE d.state = 'pending' AND d.held = 0 ORDER BY d.id LIMIT 500`,
      ),
      setState: db.prepare(
        `UPDATE deliveries SET state = @state, attempts = attempts + @attempt, last_response = coalesce(@response, last_response),
           updated_at = @now WHERE id = @id AND (@state != 'queued' OR state = 'pending')`,
      ),
    }
  }

  /** Hands every pending delivery over; safe to call often (runs are never concurrent). */
  kick(): void {
    if (this.running) {
      this.again = true
      return
    }
    this.running = true
    this.run()
      .catch(this.onError)
      .finally(() => {
        this.running = false
        if (this.again) {
          this.again = false
          this.kick()
        }
      })
  }

  private async run(): Promise<void> {
    await this.recordAgain()
    const rows = this.q.pending.all() as {
      id: number; message_id: number; rcpt: string; reason: HandOffGroup['reason']; mail_from: string; raw_id: number
      org_id: number; direction: 'in' | 'out'; from_header: string | null
      queue_id: string; client_ip: string | null; helo: string | null; received_at: number; verdict: string; score: number; symbols: string; auth_results: string | null
    }[]
    const groups = new Map<string, HandOffGroup>()
    for (const r of rows) {
      if (this.inFlight.has(r.id)) continue
      const key = `${r.message_id}/${r.reason}`
      let g = groups.get(key)
      if (!g) {
        g = {
          messageId: r.message_id, orgId: r.org_id, direction: r.direction, fromHeader: r.from_header, reason: r.reason, mailFrom: r.mail_from, rawId: r.raw_id, queueId: r.queue_id,
          clientIp: r.client_ip, helo: r.helo, receivedAt: r.received_at, verdict: r.verdict, score: r.score,
          symbols: r.symbols, authResults: r.auth_results, rcpts: new Map(),
        }
        groups.set(key, g)
      }
      g.rcpts.set(r.rcpt, r.id)
    }
    // A bounded number of hand-offs at a time: each holds a message in memory until Haraka
    // has written its queue file, and a backlog (a customer server down for a day) must
    // not become a memory spike.
    const queue = [...groups.values()]
    const worker = async () => {
      for (let g = queue.shift(); g; g = queue.shift()) {
        const ids = [...g.rcpts.values()]
        ids.forEach((id) => this.inFlight.add(id))
        let handed = false
        try {
          await this.handOff(g)
          handed = true
          await this.mark(ids, 'queued')
        } catch (err) {
          this.onError(err)
        } finally {
          // Handed but not marked: Haraka has the message; the ids stay in flight until the
          // retried mark commits, or the next run would hand them again (a duplicate).
          if (!handed || !this.unrecorded.some((u) => u.ids === ids)) ids.forEach((id) => this.inFlight.delete(id))
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(MAX_CONCURRENT_HANDOFFS, queue.length) }, worker))
  }

  /**
   * Records delivery states in the next group commit: one fsync shared with the messages
   * being accepted, instead of one blocking fsync per delivery event. 'queued' only moves a
   * delivery on from 'pending': a result Haraka reported first is never overwritten by it.
   */
  mark(ids: number[], state: DeliveryState | 'pending', response: string | null = null, attempt = false): Promise<void> {
    const u: Unrecorded = { ids, state, response, attempt, at: Date.now() }
    return this.commit([u]).catch((err) => {
      this.unrecorded.push(u)
      throw err
    })
  }

  /** how many results wait to be recorded again */
  get unrecordedCount(): number {
    return this.unrecorded.length
  }

  private commit(list: Unrecorded[]): Promise<void> {
    return this.committer.submit(() => {
      for (const u of list) {
        for (const id of u.ids) this.q.setState.run({ id, state: u.state, response: u.response, now: u.at, attempt: u.attempt ? 1 : 0 })
      }
    })
  }

  /** Records, in their order, the results an earlier commit failed to; keeps them on failure. */
  private async recordAgain(): Promise<void> {
    if (!this.unrecorded.length) return
    const list = this.unrecorded
    this.unrecorded = []
    try {
      await this.commit(list)
    } catch (err) {
      this.unrecorded = [...list, ...this.unrecorded]
      this.onError(err)
      return
    }
    for (const u of list) u.ids.forEach((id) => this.inFlight.delete(id))
  }
}
