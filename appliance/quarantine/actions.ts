/*
 * What a person does to a quarantine entry: release it, delete it, or call it "not spam"
 * (release it and teach the classifier it was wanted). The web pages, the user API and the
 * admin API all come here, so the rules are the same whichever door is used: an end user may
 * not release a virus or a stripped attachment's original; doing it twice changes nothing
 * more (a release is one delivery, a report is recorded once); every change is audited.
 * The caller has already checked that the principal may see the entry.
 */
import type { Db } from '../db/database'
import { quarantineReport, recordReports } from '../engine/reports'
import type { Accounts, Principal } from '../services/accounts'
import { adminReleaseOnly, Quarantine, type QuarantineEntry, QuarantineError } from '../services/quarantine'
import type { RawStore } from '../services/raw-store'

export const QUARANTINE_ACTIONS = ['release', 'delete', 'not-spam'] as const
export type QuarantineAction = (typeof QUARANTINE_ACTIONS)[number]

/** done: it changed; unchanged: released already; admin-only: an end user may not release it. */
export interface ActionResult {
  outcome: 'done' | 'unchanged' | 'admin-only'
  /** the classifier report a "not spam" recorded (or found recorded already) */
  report?: number
}

export class QuarantineActions {
  private readonly quarantine: Quarantine

  constructor(private readonly deps: { db: Db; raws: RawStore; accounts: Accounts }) {
    this.quarantine = new Quarantine(deps.db)
  }

  /** `via` names the door in the audit log and on the report ("API", "web"). */
  act(principal: Principal, e: QuarantineEntry, action: QuarantineAction, via: string): ActionResult {
    const audit = () => this.deps.accounts.audit(principal, `quarantine-${action}`, `entry ${e.id} for ${e.rcpt} (${via})`)
    if (action === 'delete') {
      try {
        this.quarantine.remove(e.id)
      } catch (err) {
        if (err instanceof QuarantineError) return { outcome: 'unchanged' } // deleted meanwhile
        throw err
      }
      audit()
      return { outcome: 'done' }
    }
    if (principal.role === 'user' && adminReleaseOnly(e)) return { outcome: 'admin-only' }
    let released = false
    if (!e.released_at) {
      try {
        this.quarantine.release(e.id)
        released = true
      } catch (err) {
        if (!(err instanceof QuarantineError)) throw err // released meanwhile, by another click
      }
    }
    const result: ActionResult = { outcome: released ? 'done' : 'unchanged' }
    // A report is recorded once per message and label, so saying "not spam" again adds nothing.
    if (action === 'not-spam') [result.report] = recordReports(this.deps.db, [quarantineReport(this.deps.raws, e)], `${principal.email} (${via}): quarantine ${e.id}`)
    if (released || action === 'not-spam') audit()
    return result
  }
}
