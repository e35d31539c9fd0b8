/*
 * The outbreak rules table: provisioning (CLI, later the UI), JSON import/export, and the
 * compiled set the SMTP path evaluates. Tenancy: a rule with an org_id applies only to that
 * organisation's recipients; one without applies appliance-wide.
 */
import type { Db } from '../db/database'
import { type Condition, validateCondition } from '../engine/rules'

export const RULE_ACTIONS = ['score', 'spam', 'surespam', 'reject', 'tag', 'strip'] as const
export type RuleAction = (typeof RULE_ACTIONS)[number]

export interface Rule {
  id: number
  org_id: number | null
  name: string
  description: string
  direction: 'in' | 'out' | 'both'
  what: Condition
  action: RuleAction
  score: number
  enabled: boolean
  matches: number
  last_match_at: number | null
}

export interface RuleSpec {
  name: string
  description?: string
  org?: string | null
  direction?: 'in' | 'out' | 'both'
  what: unknown
  action: RuleAction
  score?: number
  enabled?: boolean
}

export class RuleError extends Error {}

interface Row extends Omit<Rule, 'what' | 'enabled'> {
  what: string
  enabled: number
  org: string | null
}

export class Rules {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      list: db.prepare(`SELECT r.*, o.name AS org FROM rules r LEFT JOIN organisations o ON o.id = r.org_id ORDER BY r.name`),
      countMatch: db.prepare(`UPDATE rules SET matches = matches + 1, last_match_at = ? WHERE id = ?`),
    }
  }

  list(): (Rule & { org: string | null })[] {
    const rows = this.q.list.all() as Row[]
    return rows.map((r) => ({ ...r, what: JSON.parse(r.what), enabled: r.enabled === 1 }))
  }

  add(spec: RuleSpec): Rule {
    if (!/^[A-Z][A-Z0-9_]{1,62}$/.test(spec.name)) throw new RuleError(`rule name "${spec.name}" must be UPPER_SNAKE (it becomes the symbol RULE_${spec.name})`)
    if (!RULE_ACTIONS.includes(spec.action)) throw new RuleError(`action must be one of ${RULE_ACTIONS.join(', ')}`)
    let what: Condition
    try {
      what = validateCondition(spec.what)
    } catch (err) {
      throw new RuleError(`rule ${spec.name}: ${(err as Error).message}`)
    }
    let orgId: number | null = null
    if (spec.org) {
      const org = this.db.prepare(`SELECT id FROM organisations WHERE name = ?`).get(spec.org) as { id: number } | undefined
      if (!org) throw new RuleError(`no organisation "${spec.org}"`)
      orgId = org.id
    }
    if (this.db.prepare(`SELECT 1 FROM rules WHERE name = ?`).get(spec.name)) throw new RuleError(`rule ${spec.name} exists already`)
    this.db
      .prepare(
        `INSERT INTO rules (org_id, name, description, direction, what, action, score, enabled, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(orgId, spec.name, spec.description ?? '', spec.direction ?? 'in', JSON.stringify(what), spec.action, spec.score ?? 0, spec.enabled === false ? 0 : 1, Date.now())
    return this.list().find((r) => r.name === spec.name)!
  }

  remove(name: string): void {
    if (!this.db.prepare(`DELETE FROM rules WHERE name = ?`).run(name).changes) throw new RuleError(`no rule ${name}`)
  }

  setEnabled(name: string, enabled: boolean): void {
    if (!this.db.prepare(`UPDATE rules SET enabled = ? WHERE name = ?`).run(enabled ? 1 : 0, name).changes) throw new RuleError(`no rule ${name}`)
  }

  export(): RuleSpec[] {
    return this.list().map((r) => ({
      name: r.name, description: r.description, org: r.org, direction: r.direction, what: r.what, action: r.action, score: r.score, enabled: r.enabled,
    }))
  }

  /** Adds every rule of `specs` in one transaction; existing names are replaced. */
  import(specs: RuleSpec[]): number {
    if (!Array.isArray(specs)) throw new RuleError('a rules file is a JSON list of rules')
    return this.db.transaction(() => {
      for (const s of specs) {
        this.db.prepare(`DELETE FROM rules WHERE name = ?`).run(s.name)
        this.add(s)
      }
      return specs.length
    })()
  }

  countMatches(ids: number[], now: number): void {
    for (const id of ids) this.q.countMatch.run(now, id)
  }

  /** Enabled rules for the SMTP path (newest version each call: rules change at run time). */
  active(direction: 'in' | 'out'): Rule[] {
    return this.list().filter((r) => r.enabled && (r.direction === direction || r.direction === 'both'))
  }
}
