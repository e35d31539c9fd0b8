/*
 * What an organisation's agents do, set at the console: their schedules (node-cron
 * expressions) and how urgent a log line must be to be sent. Sent with every answer to a
 * batch of reports, so an agent follows a change at its next report; an agent keeps the
 * last it got (agent/run.ts) and uses its own defaults until it has one.
 */
import cron from 'node-cron'
import type { Db } from '../db/database'
import { StoredSettings } from '../services/stored-settings'
import { FleetError } from './errors'

export interface AgentConfig {
  metricsCron?: string
  inventoryCron?: string
  logsCron?: string
  /** syslog priority: send lines this urgent or more (0 emerg … 4 warning … 7 debug) */
  logPriority?: number
}

const key = (orgId: number) => `fleet_agent_config:${orgId}`

export function checkAgentConfig(c: AgentConfig): AgentConfig {
  const out: AgentConfig = {}
  for (const k of ['metricsCron', 'inventoryCron', 'logsCron'] as const) {
    const v = c[k]
    if (v === undefined) continue
    if (typeof v !== 'string' || !cron.validate(v)) throw new FleetError(`${k}: "${v}" is not a cron expression`)
    // Once a minute at most: a fleet of 10,000 sending every second would be 10,000 reports/s.
    if (k === 'metricsCron' && v.trim().split(/\s+/).length === 6) throw new FleetError('metricsCron: at most once a minute (five fields)')
    out[k] = v
  }
  if (c.logPriority !== undefined) {
    if (!Number.isInteger(c.logPriority) || c.logPriority < 0 || c.logPriority > 7) throw new FleetError('logPriority must be 0 to 7')
    out.logPriority = c.logPriority
  }
  return out
}

export class AgentConfigs {
  private readonly settings: StoredSettings
  private readonly cache = new Map<number, { at: number; config: AgentConfig | null }>()

  constructor(db: Db) {
    this.settings = new StoredSettings(db)
  }

  /** The organisation's settings (null: the agents' defaults). Cached for a few seconds: every report asks. */
  get(orgId: number, now = Date.now()): AgentConfig | null {
    const hit = this.cache.get(orgId)
    if (hit && now - hit.at < 5000) return hit.config
    const config = this.settings.get<AgentConfig | null>(key(orgId), null)
    this.cache.set(orgId, { at: now, config })
    return config
  }

  /** Merges `change` into the organisation's settings; null values go back to the defaults. */
  set(orgId: number, change: { [K in keyof AgentConfig]?: AgentConfig[K] | null }): AgentConfig {
    const next: Record<string, unknown> = { ...(this.settings.get<AgentConfig | null>(key(orgId), null) ?? {}) }
    for (const [k, v] of Object.entries(change)) {
      if (v === null) delete next[k]
      else if (v !== undefined) next[k] = v
    }
    const checked = checkAgentConfig(next as AgentConfig)
    if (Object.keys(checked).length) this.settings.set(key(orgId), checked)
    else this.settings.remove(key(orgId))
    this.cache.delete(orgId)
    return checked
  }
}
