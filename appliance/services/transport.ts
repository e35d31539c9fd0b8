/*
 * Where outbound mail goes: our own domains to the customer's server, a domain with a
 * transport route to that host, everything else to '*' (an upstream smarthost) if set, else
 * to the domain's MX from DNS (Haraka's own lookup).
 */
import type { Db } from '../db/database'
import { parseHostPort, TenantError } from './tenants'

export interface Route {
  domain: string
  host: string
  port: number
}

const DOMAIN = /^(\*|(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9])$/

export class Transport {
  private readonly q

  constructor(db: Db) {
    this.q = {
      local: db.prepare(`SELECT deliver_host AS host, deliver_port AS port FROM domains WHERE name = ?`),
      route: db.prepare(`SELECT domain, host, port FROM transport_routes WHERE domain IN (?, '*') ORDER BY domain = '*'`),
      list: db.prepare(`SELECT domain, host, port FROM transport_routes ORDER BY domain = '*', domain`),
      add: db.prepare(
        `INSERT INTO transport_routes (domain, host, port, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (domain) DO UPDATE SET host = excluded.host, port = excluded.port`,
      ),
      remove: db.prepare(`DELETE FROM transport_routes WHERE domain = ?`),
    }
  }

  /** The next hop for a recipient domain, or null for "ask DNS for its MX". */
  routeFor(domain: string): { host: string; port: number } | null {
    const d = domain.toLowerCase().replace(/\.$/, '')
    return (this.q.local.get(d) as Route | undefined) ?? (this.q.route.get(d) as Route | undefined) ?? null
  }

  add(domain: string, hostPort: string): Route {
    const d = domain.trim().toLowerCase()
    if (!DOMAIN.test(d)) throw new TenantError(`"${domain}" is not a domain name or *`)
    const { host, port } = parseHostPort(hostPort)
    this.q.add.run(d, host, port, Date.now())
    return { domain: d, host, port }
  }

  remove(domain: string): void {
    if (!this.q.remove.run(domain.trim().toLowerCase()).changes) throw new TenantError(`no route for "${domain}"`)
  }

  list(): Route[] {
    return this.q.list.all() as Route[]
  }
}
