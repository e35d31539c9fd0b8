/*
 * Host metrics at the console: a row a sample (a minute, by default), kept RAW_KEEP_MS, and
 * hourly sums, kept HOURLY_KEEP_DAYS. The hourly row is summed as each sample arrives (a
 * report is stored once, so the sums are exact), not by a job that could fall behind or miss
 * an agent's late catch-up. Plots read samples for a day and hours beyond; a 30-day plot is
 * 720 rows. Each row keeps its report's sequence number: what was stored can be accounted for.
 */
import type { Db } from '../db/database'

/** What an agent's metrics report holds (appliance/agent/collect.ts); every field may be missing. */
export interface MetricSample {
  cpu?: number
  load1?: number
  memUsed?: number
  memTotal?: number
  swapUsed?: number
  diskUse?: number
  processes?: number
  /** bytes a second, received and sent, over all interfaces */
  netRx?: number
  netTx?: number
  /** bytes a second, read and written, over all disks */
  diskRead?: number
  diskWrite?: number
}

export const RAW_KEEP_MS = 2 * 86_400_000
export const HOURLY_KEEP_DAYS = 400

export const RANGES = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 } as const
export type Range = keyof typeof RANGES

export interface MetricSeries {
  range: Range
  /** start of each point (ms) */
  at: number[]
  cpu: (number | null)[]
  memPct: (number | null)[]
  diskUse: (number | null)[]
  load1: (number | null)[]
  netRx: (number | null)[]
  netTx: (number | null)[]
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

export class FleetMetrics {
  private readonly q

  constructor(private readonly db: Db) {
    this.q = {
      raw: db.prepare(
        `INSERT OR IGNORE INTO fleet_metrics (host_id, at, seq, cpu, load1, mem_used, mem_total, swap_used, disk_use, processes, net_rx, net_tx, disk_read, disk_write)
         VALUES (@host, @at, @seq, @cpu, @load1, @memUsed, @memTotal, @swapUsed, @diskUse, @processes, @netRx, @netTx, @diskRead, @diskWrite)`,
      ),
      // A field a host does not report stays NULL in the hour rather than averaging as 0.
      hourly: db.prepare(
        `INSERT INTO fleet_metrics_hourly (host_id, hour, samples, cpu_sum, cpu_max, load1_sum, mem_pct_sum, disk_max, processes_sum, net_rx_sum, net_tx_sum, disk_read_sum, disk_write_sum)
         VALUES (@host, @hour, 1, @cpu, @cpu, @load1, @memPct, @diskUse, @processes, @netRx, @netTx, @diskRead, @diskWrite)
         ON CONFLICT (host_id, hour) DO UPDATE SET
           samples = samples + 1,
           cpu_sum = coalesce(cpu_sum + excluded.cpu_sum, cpu_sum, excluded.cpu_sum),
           cpu_max = max(coalesce(cpu_max, excluded.cpu_max), coalesce(excluded.cpu_max, cpu_max)),
           load1_sum = coalesce(load1_sum + excluded.load1_sum, load1_sum, excluded.load1_sum),
           mem_pct_sum = coalesce(mem_pct_sum + excluded.mem_pct_sum, mem_pct_sum, excluded.mem_pct_sum),
           disk_max = max(coalesce(disk_max, excluded.disk_max), coalesce(excluded.disk_max, disk_max)),
           processes_sum = coalesce(processes_sum + excluded.processes_sum, processes_sum, excluded.processes_sum),
           net_rx_sum = coalesce(net_rx_sum + excluded.net_rx_sum, net_rx_sum, excluded.net_rx_sum),
           net_tx_sum = coalesce(net_tx_sum + excluded.net_tx_sum, net_tx_sum, excluded.net_tx_sum),
           disk_read_sum = coalesce(disk_read_sum + excluded.disk_read_sum, disk_read_sum, excluded.disk_read_sum),
           disk_write_sum = coalesce(disk_write_sum + excluded.disk_write_sum, disk_write_sum, excluded.disk_write_sum)`,
      ),
      host: db.prepare(`UPDATE fleet_hosts SET cpu = @cpu, mem_pct = @memPct, disk_use = @diskUse WHERE id = @host`),
      minutes: db.prepare(
        `SELECT at / CAST(@step AS INTEGER) * CAST(@step AS INTEGER) AS m, avg(cpu) AS cpu, avg(100.0 * mem_used / nullif(mem_total, 0)) AS memPct, max(disk_use) AS diskUse,
           avg(load1) AS load1, avg(net_rx) AS netRx, avg(net_tx) AS netTx
         FROM fleet_metrics WHERE host_id = @host AND at >= @from GROUP BY m ORDER BY m`,
      ),
      hours: db.prepare(
        `SELECT hour, cpu_sum / samples AS cpu, mem_pct_sum / samples AS memPct, disk_max AS diskUse, load1_sum / samples AS load1,
           net_rx_sum / samples AS netRx, net_tx_sum / samples AS netTx
         FROM fleet_metrics_hourly WHERE host_id = @host AND hour >= @from ORDER BY hour`,
      ),
      latest: db.prepare(`SELECT at, cpu, disk_use AS diskUse FROM fleet_metrics WHERE host_id = ? ORDER BY at DESC LIMIT 1`),
    }
  }

  /**
   * Adds one metrics report (inside the caller's transaction). `latest`: this is the newest
   * report of its batch, so its figures go on the host row.
   */
  add(hostId: number, seq: number, at: number, data: MetricSample, latest: boolean): void {
    const m = {
      host: hostId,
      at,
      seq,
      cpu: num(data.cpu),
      load1: num(data.load1),
      memUsed: num(data.memUsed),
      memTotal: num(data.memTotal),
      swapUsed: num(data.swapUsed),
      diskUse: num(data.diskUse),
      processes: num(data.processes),
      netRx: num(data.netRx),
      netTx: num(data.netTx),
      diskRead: num(data.diskRead),
      diskWrite: num(data.diskWrite),
    }
    const memPct = m.memUsed !== null && m.memTotal ? (100 * m.memUsed) / m.memTotal : null
    if (this.q.raw.run({ ...m, memUsed: m.memUsed === null ? null : Math.round(m.memUsed), memTotal: m.memTotal === null ? null : Math.round(m.memTotal), swapUsed: m.swapUsed === null ? null : Math.round(m.swapUsed), processes: m.processes === null ? null : Math.round(m.processes) }).changes) {
      const { at: _at, seq: _seq, memUsed: _u, memTotal: _t, swapUsed: _s, ...rest } = m
      this.q.hourly.run({ ...rest, hour: Math.floor(at / 3_600_000), memPct })
    }
    if (latest) this.q.host.run({ host: hostId, cpu: m.cpu, memPct, diskUse: m.diskUse })
  }

  /** The host's newest minute, or null. */
  latest(hostId: number): { at: number; cpu: number | null; diskUse: number | null } | null {
    return (this.q.latest.get(hostId) as { at: number; cpu: number | null; diskUse: number | null } | undefined) ?? null
  }

  /** A plot's points: 5-minute averages over a day, hourly ones over a week or a month. */
  series(hostId: number, range: Range, now = Date.now()): MetricSeries {
    const from = now - RANGES[range]
    const out: MetricSeries = { range, at: [], cpu: [], memPct: [], diskUse: [], load1: [], netRx: [], netTx: [] }
    type Row = { cpu: number | null; memPct: number | null; diskUse: number | null; load1: number | null; netRx: number | null; netTx: number | null }
    const push = (at: number, r: Row) => {
      out.at.push(at)
      out.cpu.push(r.cpu)
      out.memPct.push(r.memPct)
      out.diskUse.push(r.diskUse)
      out.load1.push(r.load1)
      out.netRx.push(r.netRx)
      out.netTx.push(r.netTx)
    }
    if (range === '24h') {
      for (const r of this.q.minutes.all({ host: hostId, step: 5 * 60_000, from }) as (Row & { m: number })[]) push(r.m, r)
    } else {
      for (const r of this.q.hours.all({ host: hostId, from: Math.floor(from / 3_600_000) }) as (Row & { hour: number })[]) push(r.hour * 3_600_000, r)
    }
    return out
  }

  /** Drops samples older than RAW_KEEP_MS and hours older than HOURLY_KEEP_DAYS. */
  purge(now = Date.now()): { minutes: number; hours: number } {
    const minutes = this.db.prepare(`DELETE FROM fleet_metrics WHERE at < ?`).run(now - RAW_KEEP_MS).changes
    const hours = this.db.prepare(`DELETE FROM fleet_metrics_hourly WHERE hour < ?`).run(Math.floor((now - HOURLY_KEEP_DAYS * 86_400_000) / 3_600_000)).changes
    return { minutes, hours }
  }
}
