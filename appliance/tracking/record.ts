/*
 * Records what the SMTP dialogue refused, for the tracking centre: Haraka runs every "deny"
 * hook when any plugin (or its guard) answers 4xx/5xx, with the stage, the plugin and the
 * words said. One row a recipient, so "where is my mail to bob?" finds it; a refusal before
 * RCPT (connection, HELO, MAIL) is one row without a recipient.
 *
 * Rows ride the group committer's next batch of mail (GroupCommitter.later): the same
 * transaction and fsync as the mail accepted soon after, so recording adds no commit of its
 * own (the first version committed each refusal on its own and cost 16 % of the SMTP rate
 * on a load with one unknown recipient in four). With no mail, they are written within 2 s;
 * a crash can lose those 2 s of tracking rows, never mail. An insert that fails is swallowed:
 * a tracking row must never take a message's commit down with it.
 */
import type { Db } from '../db/database'
import type { GroupCommitter } from '../db/group-commit'
import { TRACKING_DAYS_SETTING } from './search'

export interface Refusal {
  at: number
  session: string
  clientIp: string
  helo: string | null
  mailFrom: string | null
  rcpts: string[]
  stage: string
  code: number
  reason: string
  plugin: string
}

export class RefusalRecorder {
  private readonly insert
  private readonly orgOfDomain
  private readonly days
  private on = true
  private checkedAt = 0

  constructor(db: Db, private readonly committer: GroupCommitter, private readonly log: (msg: string) => void = () => undefined) {
    this.insert = db.prepare(
      `INSERT INTO smtp_refusals (at, org_id, session, client_ip, helo, mail_from, rcpt, stage, code, reason, plugin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.orgOfDomain = db.prepare(`SELECT org_id FROM domains WHERE name = ?`).pluck()
    this.days = db.prepare(`SELECT value FROM settings WHERE key = '${TRACKING_DAYS_SETTING}'`).pluck()
  }

  /** Kept 0 days means not recorded; the setting is looked at every 10 s, not per refusal. */
  private enabled(now: number): boolean {
    if (now - this.checkedAt > 10_000) {
      const v = this.days.get() as string | undefined
      this.on = v === undefined || Number(JSON.parse(v)) > 0
      this.checkedAt = now
    }
    return this.on
  }

  record(r: Refusal): void {
    if (!this.enabled(r.at)) return
    const rows = r.rcpts.length ? r.rcpts : [null]
    this.committer.later(() => {
      try {
        for (const rcpt of rows) {
          const domain = rcpt ? rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase() : null
          const org = domain ? ((this.orgOfDomain.get(domain) as number | undefined) ?? null) : null
          this.insert.run(r.at, org, r.session, r.clientIp, r.helo, r.mailFrom, rcpt, r.stage, r.code, r.reason.slice(0, 500), r.plugin)
        }
      } catch (err) {
        this.log(`tracking: a refusal was not recorded: ${(err as Error).message}`)
      }
    })
  }
}
