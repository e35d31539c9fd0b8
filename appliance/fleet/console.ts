/*
 * The fleet console's store: enrollment tokens per organisation, the hosts that enrolled with
 * them, and what their agents report. Every read takes the caller's organisation scope, so a
 * host of another tenant is "not found", never a refusal that says it exists.
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import { whereIn } from '../db/sql'
import {
  APPLIANCE_COMMANDS, type Command, COMMAND_KINDS, type CommandKind, MAX_COMMAND_OUTPUT, type EnrollRequest, HOST_KINDS, type HostKind, MAX_REPORTS_PER_BATCH, REPORT_KINDS, type Report, verify,
} from './protocol'
import { type AgentConfig, AgentConfigs } from './agent-config'
import { FleetError } from './errors'
import { type InventoryChange, inventoryChanges } from './inventory-diff'
import { FleetLearning, type SharedWord, validWords } from './learning'
import { FleetLogs, type LogEntry, validLogEntries } from './logs'
import { FleetMetrics, type MetricSample } from './metrics'
import { parseQuery, registerVersionKey, scopeFilter } from './search'

export { FleetError }

export interface EnrollToken {
  id: number
  org: string
  uses_left: number | null
  expires_at: number
  revoked_at: number | null
  created_at: number
}

export interface Host {
  id: number
  org_id: number
  org: string
  name: string
  kind: HostKind
  version: string | null
  os: string | null
  enrolled_at: number
  last_seen_at: number | null
  last_seq: number
  revoked_at: number | null
  /** the newest metrics: CPU %, memory in use %, the fullest file system % */
  cpu: number | null
  mem_pct: number | null
  disk_use: number | null
  /** incidents open now (the Fleet list; 0 elsewhere) */
  open_incidents?: number
  status: 'online' | 'late' | 'offline' | 'revoked'
}

/** A host that has not reported for this long is late, and after OFFLINE_MS offline. */
export const LATE_MS = 3 * 60_000
export const OFFLINE_MS = 15 * 60_000
export const INVENTORIES_KEPT = 30

/** How the Fleet list can be ordered: the most urgent first where there is an urgency. */
export const SORTS = {
  org: 'o.name',
  host: 'h.name',
  'last-report': 'coalesce(h.last_seen_at, h.enrolled_at) ASC',
  disk: 'h.disk_use IS NULL, h.disk_use DESC',
  cpu: 'h.cpu IS NULL, h.cpu DESC',
  version: 'moat_version_key(h.version) ASC',
} as const
export type SortKey = keyof typeof SORTS

const tokenHash = (t: string) => crypto.createHash('sha256').update(t).digest('hex')

export class Fleet {
  readonly metrics: FleetMetrics
  readonly logs: FleetLogs
  readonly agentConfigs: AgentConfigs
  readonly learning: FleetLearning

  constructor(private readonly db: Db) {
    this.learning = new FleetLearning(db)
    this.metrics = new FleetMetrics(db)
    this.logs = new FleetLogs(db)
    this.agentConfigs = new AgentConfigs(db)
  }

  /** A new enrollment token for one organisation; only its hash is stored. */
  createToken(orgId: number, opts: { uses?: number | null; expiresDays?: number; by: string }, now = Date.now()): { id: number; token: string } {
    const days = opts.expiresDays ?? 7
    if (!(days > 0 && days <= 365)) throw new FleetError('--expires must be 1 to 365 days')
    if (opts.uses != null && !(Number.isInteger(opts.uses) && opts.uses > 0)) throw new FleetError('--uses must be a whole number above 0')
    const token = `moat_enroll_${crypto.randomBytes(24).toString('base64url')}`
    const id = Number(
      this.db
        .prepare(`INSERT INTO fleet_tokens (org_id, token_hash, uses_left, expires_at, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)`)
        .run(orgId, tokenHash(token), opts.uses ?? null, now + days * 86_400_000, now, opts.by).lastInsertRowid,
    )
    return { id, token }
  }

  tokens(orgIds: number[] | null): EnrollToken[] {
    const w = orgIds ? whereIn('t.org_id', orgIds) : { sql: '1', args: [] }
    return this.db
      .prepare(`SELECT t.id, o.name AS org, t.uses_left, t.expires_at, t.revoked_at, t.created_at FROM fleet_tokens t JOIN organisations o ON o.id = t.org_id WHERE ${w.sql} ORDER BY t.id`)
      .all(...w.args) as EnrollToken[]
  }

  revokeToken(id: number, orgIds: number[] | null, now = Date.now()): boolean {
    const w = orgIds ? whereIn('org_id', orgIds) : { sql: '1', args: [] }
    return this.db.prepare(`UPDATE fleet_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND ${w.sql}`).run(now, id, ...w.args).changes > 0
  }

  /** Enrolls a host with a token: a use is taken in the same transaction that makes the host. */
  enroll(req: EnrollRequest, now = Date.now()): { hostId: number; orgId: number } {
    if (typeof req?.token !== 'string' || typeof req.publicKey !== 'string' || typeof req.name !== 'string') throw new FleetError('token, publicKey and name are required')
    if (!HOST_KINDS.includes(req.kind)) throw new FleetError(`kind must be one of ${HOST_KINDS.join(', ')}`)
    const name = req.name.trim().slice(0, 120)
    if (!name) throw new FleetError('name is empty')
    try {
      const key = crypto.createPublicKey({ key: Buffer.from(req.publicKey, 'base64'), format: 'der', type: 'spki' })
      if (key.asymmetricKeyType !== 'ed25519') throw new Error('not Ed25519')
    } catch {
      throw new FleetError('publicKey must be an Ed25519 public key (SPKI DER, base64)')
    }
    return this.db.transaction(() => {
      const t = this.db.prepare(`SELECT id, org_id, uses_left, expires_at, revoked_at FROM fleet_tokens WHERE token_hash = ?`).get(tokenHash(req.token)) as
        | { id: number; org_id: number; uses_left: number | null; expires_at: number; revoked_at: number | null }
        | undefined
      if (!t || t.revoked_at || t.expires_at <= now || t.uses_left === 0) throw new FleetError('the enrollment token is unknown, revoked, expired or used up', 403)
      if (t.uses_left !== null) this.db.prepare(`UPDATE fleet_tokens SET uses_left = uses_left - 1 WHERE id = ?`).run(t.id)
      const hostId = Number(
        this.db
          .prepare(`INSERT INTO fleet_hosts (org_id, name, kind, public_key, version, os, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
          .run(t.org_id, name, req.kind, req.publicKey, String(req.version ?? '').slice(0, 40) || null, String(req.os ?? '').slice(0, 120) || null, now).lastInsertRowid,
      )
      this.audit(t.org_id, 'fleet-enroll', `host ${hostId} ${name} (${req.kind})`, now)
      return { hostId, orgId: t.org_id }
    }).immediate()
  }

  /**
   * Stores a signed batch of reports. Nothing of a refused batch is kept. A batch whose first
   * report does not follow the last one stored is a replay or a retry of a delivered batch:
   * 409 with the last stored sequence number, which the agent uses to drop what it has sent.
   */
  /** The host a signed request comes from; one answer for an unknown host and a bad signature (the id alone proves nothing). */
  authenticate(hostId: number, signature: string, method: string, path: string, body: string): { id: number; org_id: number; kind: HostKind } {
    const host = this.db.prepare(`SELECT id, org_id, kind, public_key, revoked_at FROM fleet_hosts WHERE id = ?`).get(hostId) as
      | { id: number; org_id: number; kind: HostKind; public_key: string; revoked_at: number | null }
      | undefined
    if (!host || !verify(host.public_key, signature, method, path, hostId, body)) throw new FleetError('unknown host or bad signature', 401)
    if (host.revoked_at) throw new FleetError('this host was revoked; enroll it again', 403)
    return host
  }

  ingest(hostId: number, signature: string, method: string, path: string, body: string, now = Date.now()): { stored: number; lastSeq: number; commands: Command[]; config: AgentConfig | null } {
    const host = this.authenticate(hostId, signature, method, path, body)
    let parsed: unknown
    try {
      parsed = JSON.parse(body)
    } catch {
      throw new FleetError('the body is not JSON')
    }
    const reports = (parsed as { reports?: unknown })?.reports
    if (!Array.isArray(reports) || reports.length === 0) throw new FleetError('reports must be a non-empty array')
    if (reports.length > MAX_REPORTS_PER_BATCH) throw new FleetError(`at most ${MAX_REPORTS_PER_BATCH} reports a batch`, 413)
    let prev = 0
    for (const r of reports as Report[]) {
      if (!Number.isSafeInteger(r?.seq) || r.seq <= prev) throw new FleetError('seq must be whole numbers, strictly increasing')
      if (!REPORT_KINDS.includes(r.kind)) throw new FleetError(`kind must be one of ${REPORT_KINDS.join(', ')}`)
      if (!Number.isSafeInteger(r.at) || r.at <= 0) throw new FleetError('at must be a time in ms')
      if (typeof r.data !== 'object' || r.data === null) throw new FleetError('data must be an object')
      prev = r.seq
    }
    const logEntries = new Map<number, LogEntry[]>()
    for (const r of reports as Report[]) if (r.kind === 'logs') logEntries.set(r.seq, validLogEntries(r.data))
    const words = new Map<number, SharedWord[]>()
    for (const r of reports as Report[]) if (r.kind === 'fingerprints') words.set(r.seq, validWords(r.data))
    return this.db.transaction(() => {
      const last = (this.db.prepare(`SELECT last_seq FROM fleet_hosts WHERE id = ?`).pluck().get(hostId) as number) ?? 0
      if ((reports as Report[])[0].seq <= last) throw new FleetError(`already have up to ${last}`, 409, last)
      const add = this.db.prepare(`INSERT INTO fleet_reports (host_id, seq, kind, at, received_at, body) VALUES (?, ?, ?, ?, ?, ?)`)
      // Metrics and logs go to their own tables (a row a minute; searchable lines); the rest
      // is kept as sent. The host's last_seq, not these rows, is what refuses a replay.
      const newestMetrics = [...(reports as Report[])].reverse().find((r) => r.kind === 'metrics')
      for (const r of reports as Report[]) {
        if (r.kind === 'metrics') this.metrics.add(hostId, r.seq, r.at, r.data as MetricSample, r === newestMetrics)
        else if (r.kind === 'logs') this.logs.add(hostId, r.seq, logEntries.get(r.seq)!)
        // Kept as the words they are, for the MSP's other appliances (fleet/learning.ts).
        else if (r.kind === 'fingerprints') this.learning.ingest(hostId, words.get(r.seq)!, now)
        else add.run(hostId, r.seq, r.kind, r.at, now, JSON.stringify(r.data))
        if (r.kind === 'inventory') this.setSoftware(hostId, (r.data as { software?: unknown }).software)
      }
      const lastSeq = (reports as Report[])[reports.length - 1].seq
      const health = [...(reports as Report[])].reverse().find((r) => r.kind === 'inventory' || r.kind === 'health')?.data as { version?: string } | undefined
      this.db.prepare(`UPDATE fleet_hosts SET last_seq = ?, last_seen_at = ?, version = coalesce(?, version) WHERE id = ?`).run(lastSeq, now, health?.version ?? null, hostId)
      for (const r of reports as Report[]) if (r.kind === 'command') this.commandDone(hostId, r.data as { id?: unknown; ok?: unknown; output?: unknown }, now)
      return { stored: reports.length, lastSeq, commands: this.pendingCommands(hostId), config: this.agentConfigs.get(host.org_id, now) }
    }).immediate()
  }

  /** The host's installed software, as its newest inventory lists it. */
  private setSoftware(hostId: number, software: unknown): void {
    if (!Array.isArray(software)) return
    this.db.prepare(`DELETE FROM fleet_software WHERE host_id = ?`).run(hostId)
    const add = this.db.prepare(`INSERT OR IGNORE INTO fleet_software (host_id, name, version) VALUES (?, ?, ?)`)
    for (const p of software.slice(0, 20_000) as { name?: unknown; version?: unknown }[]) {
      if (typeof p?.name === 'string' && p.name) add.run(hostId, p.name.toLowerCase().slice(0, 200), String(p.version ?? '').slice(0, 100))
    }
  }

  /**
   * A page of the fleet for a query (fleet/search.ts: words and filters such as disk>90,
   * status:offline, version<0.2, software:nginx), with the total and the count by status of
   * everything in scope.
   */
  search(orgIds: number[] | null, q: string, opts: { limit?: number; offset?: number; sort?: SortKey } = {}, now = Date.now()): { hosts: Host[]; total: number; counts: Record<Host['status'], number> } {
    registerVersionKey(this.db)
    const scope = scopeFilter(orgIds)
    const where = parseQuery(q, now, LATE_MS, OFFLINE_MS)
    const from = `FROM fleet_hosts h JOIN organisations o ON o.id = h.org_id WHERE ${scope.sql} AND ${where.sql}`
    const limit = Math.min(500, Math.max(1, opts.limit ?? 100))
    const rows = this.db
      .prepare(
        `SELECT h.id, h.org_id, o.name AS org, h.name, h.kind, h.version, h.os, h.enrolled_at, h.last_seen_at, h.last_seq, h.revoked_at, h.cpu, h.mem_pct, h.disk_use,
           (SELECT count(*) FROM fleet_incidents i WHERE i.host_id = h.id AND i.resolved_at IS NULL) AS open_incidents
         ${from} ORDER BY ${SORTS[opts.sort ?? 'org']}, o.name, h.name, h.id LIMIT ? OFFSET ?`,
      )
      .all(...scope.args, ...where.args, limit, Math.max(0, opts.offset ?? 0)) as Omit<Host, 'status'>[]
    const total = this.db.prepare(`SELECT count(*) ${from}`).pluck().get(...scope.args, ...where.args) as number
    const counts = { online: 0, late: 0, offline: 0, revoked: 0 }
    for (const s of Object.keys(counts) as (keyof typeof counts)[]) {
      const f = parseQuery(`status:${s}`, now, LATE_MS, OFFLINE_MS)
      counts[s] = this.db.prepare(`SELECT count(*) FROM fleet_hosts h WHERE ${scope.sql} AND ${f.sql}`).pluck().get(...scope.args, ...f.args) as number
    }
    return { hosts: rows.map((h) => ({ ...h, status: statusOf(h, now) })), total, counts }
  }

  hosts(orgIds: number[] | null, now = Date.now(), onlyId?: number): Host[] {
    const w = orgIds ? whereIn('h.org_id', orgIds) : { sql: '1', args: [] }
    const one = onlyId === undefined ? '' : ' AND h.id = ?'
    const rows = this.db
      .prepare(
        `SELECT h.id, h.org_id, o.name AS org, h.name, h.kind, h.version, h.os, h.enrolled_at, h.last_seen_at, h.last_seq, h.revoked_at, h.cpu, h.mem_pct, h.disk_use
         FROM fleet_hosts h JOIN organisations o ON o.id = h.org_id WHERE ${w.sql}${one} ORDER BY o.name, h.name`,
      )
      .all(...w.args, ...(onlyId === undefined ? [] : [onlyId])) as Omit<Host, 'status'>[]
    return rows.map((h) => ({ ...h, status: statusOf(h, now) }))
  }

  /** One host, or null when it does not exist or is not in the caller's scope. */
  /** One host with its newest inventory, what changed since the one before, and its newest health. */
  host(id: number, orgIds: number[] | null, now = Date.now()): (Host & { inventory: unknown; health: unknown; changes: { since: number; list: InventoryChange[] } | null }) | null {
    const [h] = this.hosts(orgIds, now, id)
    if (!h) return null
    const latest = (kind: string) => {
      const body = this.db.prepare(`SELECT body FROM fleet_reports WHERE host_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1`).pluck().get(id, kind) as string | undefined
      return body ? JSON.parse(body) : null
    }
    const inventories = this.db.prepare(`SELECT at, body FROM fleet_reports WHERE host_id = ? AND kind = 'inventory' ORDER BY seq DESC LIMIT 2`).all(id) as { at: number; body: string }[]
    const changes = inventories.length === 2 ? { since: inventories[1].at, list: inventoryChanges(JSON.parse(inventories[1].body), JSON.parse(inventories[0].body)) } : null
    return { ...h, inventory: inventories[0] ? JSON.parse(inventories[0].body) : null, health: latest('health'), changes }
  }

  /**
   * Queues a command for a host in the caller's scope; null when there is no such host. An
   * appliance's commands (restart, update) are refused for servers, and apply-update needs
   * the https:// URL of a signed release (the appliance checks the signature, as 'moat
   * update' does, and rolls back a release that does not come up).
   */
  queueCommand(hostId: number, kind: CommandKind, orgIds: number[] | null, by: string, now = Date.now(), arg: string | null = null): number | null {
    if (!COMMAND_KINDS.includes(kind)) throw new FleetError(`the command must be one of ${COMMAND_KINDS.join(', ')}`)
    const [h] = this.hosts(orgIds, now, hostId)
    if (!h || h.status === 'revoked') return null
    if (APPLIANCE_COMMANDS.includes(kind) && h.kind !== 'appliance') throw new FleetError(`${kind} is for Moat appliances; ${h.name} is a ${h.kind} server`)
    if (kind === 'apply-update') {
      if (!arg || !/^https:\/\/\S+$/.test(arg)) throw new FleetError('apply-update needs the https:// URL of a signed release (.moat)')
    } else arg = null
    const id = Number(this.db.prepare(`INSERT INTO fleet_commands (host_id, kind, arg, created_at, created_by) VALUES (?, ?, ?, ?, ?)`).run(hostId, kind, arg, now, by).lastInsertRowid)
    this.audit(h.org_id, 'fleet-command', `${kind}${arg ? ` ${arg}` : ''} for host ${hostId} ${h.name} by ${by}`, now)
    return id
  }

  /** A host's newest commands; the output shortened to its first line (the whole: commandOutput). */
  commands(hostId: number): { id: number; kind: string; arg: string | null; created_at: number; created_by: string; done_at: number | null; ok: number | null; output: string | null; output_bytes: number }[] {
    return this.db
      .prepare(
        `SELECT id, kind, arg, created_at, created_by, done_at, ok, substr(output, 1, instr(output || char(10), char(10)) - 1) AS output, length(CAST(output AS BLOB)) AS output_bytes
         FROM fleet_commands WHERE host_id = ? ORDER BY id DESC LIMIT 50`,
      )
      .all(hostId) as ReturnType<Fleet['commands']>
  }

  /** One command's whole output (a log bundle), for a host in the caller's scope. */
  commandOutput(hostId: number, commandId: number, orgIds: number[] | null): { kind: string; output: string } | null {
    if (!this.hosts(orgIds, Date.now(), hostId).length) return null
    return (this.db.prepare(`SELECT kind, output FROM fleet_commands WHERE id = ? AND host_id = ? AND output IS NOT NULL`).get(commandId, hostId) as { kind: string; output: string } | undefined) ?? null
  }

  private pendingCommands(hostId: number): Command[] {
    return this.db.prepare(`SELECT id, kind, arg FROM fleet_commands WHERE host_id = ? AND done_at IS NULL ORDER BY id`).all(hostId) as Command[]
  }

  private commandDone(hostId: number, r: { id?: unknown; ok?: unknown; output?: unknown }, now: number): void {
    const done = this.db
      .prepare(`UPDATE fleet_commands SET done_at = ?, ok = ?, output = ? WHERE id = ? AND host_id = ? AND done_at IS NULL`)
      .run(now, r.ok ? 1 : 0, String(r.output ?? '').slice(0, MAX_COMMAND_OUTPUT), Number(r.id), hostId)
    if (done.changes) {
      const org = this.db.prepare(`SELECT org_id FROM fleet_hosts WHERE id = ?`).pluck().get(hostId) as number
      this.audit(org, 'fleet-command-done', `command ${r.id} on host ${hostId}: ${r.ok ? 'ok' : 'failed'}`, now)
    }
  }

  /**
   * Daily: metric samples after two days (their hourly sums after 400), log lines after 14
   * days, health reports after two days (a host's newest is kept however old) and all but a
   * host's newest INVENTORIES_KEPT inventories (what changed is read from the last two).
   */
  purge(now = Date.now()): { metricSamples: number; metricHours: number; logLines: number; reports: number } {
    const m = this.metrics.purge(now)
    const logLines = this.logs.purge(now)
    const health = this.db
      .prepare(
        `DELETE FROM fleet_reports WHERE kind = 'health' AND at < ?
           AND seq < (SELECT max(r.seq) FROM fleet_reports r WHERE r.host_id = fleet_reports.host_id AND r.kind = 'health')`,
      )
      .run(now - 2 * 86_400_000).changes
    const inventories = this.db
      .prepare(
        `DELETE FROM fleet_reports WHERE kind = 'inventory'
           AND seq < coalesce((SELECT r.seq FROM fleet_reports r WHERE r.host_id = fleet_reports.host_id AND r.kind = 'inventory' ORDER BY r.seq DESC LIMIT 1 OFFSET ?), 0)`,
      )
      .run(INVENTORIES_KEPT - 1).changes
    return { metricSamples: m.minutes, metricHours: m.hours, logLines, reports: health + inventories }
  }

  /** A host's open incidents and its latest resolved ones. */
  incidents(hostId: number): { rule: string; detail: string; opened_at: number; resolved_at: number | null }[] {
    return this.db
      .prepare(`SELECT rule, detail, opened_at, resolved_at FROM fleet_incidents WHERE host_id = ? ORDER BY resolved_at IS NOT NULL, id DESC LIMIT 20`)
      .all(hostId) as ReturnType<Fleet['incidents']>
  }

  reportCount(hostId: number): number {
    return this.db.prepare(`SELECT count(*) FROM fleet_reports WHERE host_id = ?`).pluck().get(hostId) as number
  }

  revokeHost(id: number, orgIds: number[] | null, now = Date.now()): boolean {
    const w = orgIds ? whereIn('org_id', orgIds) : { sql: '1', args: [] }
    return this.db.prepare(`UPDATE fleet_hosts SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND ${w.sql}`).run(now, id, ...w.args).changes > 0
  }

  private audit(orgId: number, action: string, detail: string, now: number): void {
    this.db.prepare(`INSERT INTO audit_log (at, actor, org_id, action, detail) VALUES (?, 'fleet', ?, ?, ?)`).run(now, orgId, action, detail)
  }
}

function statusOf(h: { last_seen_at: number | null; revoked_at: number | null; enrolled_at: number }, now: number): Host['status'] {
  if (h.revoked_at) return 'revoked'
  const seen = h.last_seen_at ?? h.enrolled_at
  return now - seen < LATE_MS ? 'online' : now - seen < OFFLINE_MS ? 'late' : 'offline'
}
