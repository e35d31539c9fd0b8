/*
 * Outbound mail: the customer servers allowed to relay (set by MSP and appliance admins only:
 * a wrong network is an open relay), held senders, DKIM per domain with the DNS record to
 * publish, and the appliance admin's transport routes (a smarthost for every domain, or a
 * host for one).
 */
import { z } from 'zod'
import { Dkim, zoneLine } from '../../appliance/services/dkim'
import { OutboundSenders } from '../../appliance/services/outbound-senders'
import { RelayControl } from '../../appliance/services/relay'
import { Transport } from '../../appliance/services/transport'
import { type ApiContext, MSP_ROLES } from './context'
import { ApiError } from './define'
import { email, OrgParam, orgName } from './organisations'

const Network_ = z.object({ id: z.number().int(), cidr: z.string(), description: z.string(), created_at: z.number() })
const Held_ = z.object({ address: z.string(), reason: z.string(), held_at: z.number() })
const Route_ = z.object({ domain: z.string(), host: z.string(), port: z.number().int() })
const Dkim_ = z.object({
  domain: z.string(),
  selector: z.string().nullable(),
  signing: z.boolean(),
  record: z.object({ name: z.string(), type: z.literal('TXT'), value: z.string() }).nullable().describe('publish this before turning signing on'),
  zone_line: z.string().nullable(),
})
const DomainParam = z.object({ org: orgName, domain: z.string().min(1).max(253) })

export function outboundEndpoints({ api, db, orgIn, domainIn, only, call, audit }: ApiContext): void {
  const relay = new RelayControl(db)
  const senders = new OutboundSenders(db)
  const transport = new Transport(db)
  const dkim = new Dkim(db)

  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/relay-networks', tag: 'relay networks', summary: "The organisation's mail servers allowed to relay through Moat", params: OrgParam,
    response: z.object({ items: z.array(Network_) }),
    run: ({ scope, params }) => {
      const org = orgIn(scope, params.org)
      return { items: relay.listNetworks(org.id).map(({ id, cidr, description, created_at }) => ({ id, cidr, description, created_at })) }
    },
  })

  api.add({
    method: 'post', path: '/api/v1/admin/organisations/:org/relay-networks', tag: 'relay networks', status: 201,
    summary: 'Allow a network to relay (MSP and appliance admins); a network registered already is a 409', params: OrgParam,
    body: z.object({ cidr: z.string().describe('192.0.2.10/32, 2001:db8::/64 or an address'), description: z.string().max(200).optional() }),
    response: Network_,
    run: ({ principal, scope, params, body }) => {
      only(principal, MSP_ROLES, 'allow networks to relay')
      const org = orgIn(scope, params.org)
      const n = call(() => relay.addNetwork(org.name, body.cidr, body.description ?? ''))
      audit(principal, 'relay-add', `${n.cidr} for ${org.name}`)
      return { id: n.id, cidr: n.cidr, description: n.description, created_at: n.created_at }
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/organisations/:org/relay-networks/:id', tag: 'relay networks', summary: 'Stop a network relaying (MSP and appliance admins)',
    params: z.object({ org: orgName, id: z.coerce.number().int() }),
    response: z.object({ removed: z.boolean() }),
    run: ({ principal, scope, params }) => {
      only(principal, MSP_ROLES, 'remove relay networks')
      const org = orgIn(scope, params.org)
      const n = relay.listNetworks(org.id).find((x) => x.id === params.id)
      if (!n) throw new ApiError(404, `no relay network ${params.id} in ${org.name}`)
      relay.removeNetwork(n.cidr)
      audit(principal, 'relay-remove', `${n.cidr} of ${org.name}`)
      return { removed: true }
    },
  })

  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/held-senders', tag: 'held senders', summary: 'Senders whose outbound mail waits, unsent, until released', params: OrgParam,
    response: z.object({ items: z.array(Held_) }),
    run: ({ scope, params }) => {
      const org = orgIn(scope, params.org)
      return { items: senders.list(false, org.id).map((h) => ({ address: h.address, reason: h.reason, held_at: h.held_at })) }
    },
  })

  api.add({
    method: 'put', path: '/api/v1/admin/organisations/:org/held-senders/:address', tag: 'held senders', summary: "Hold a sender's outbound mail (idempotent)",
    params: z.object({ org: orgName, address: email }), body: z.object({ reason: z.string().max(200).optional() }),
    response: z.object({ held: z.boolean(), already: z.boolean() }),
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const address = params.address.trim().toLowerCase()
      const fresh = call(() => senders.hold(org.id, address, body.reason?.trim() || `held by ${principal.email}`))
      if (fresh) audit(principal, 'sender-hold', `${address} of ${org.name}`)
      return { held: true, already: !fresh }
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/organisations/:org/held-senders/:address', tag: 'held senders', summary: "Release a held sender: their waiting mail is sent",
    params: z.object({ org: orgName, address: email }),
    response: z.object({ released: z.number().int().describe('deliveries set going') }),
    run: ({ principal, scope, params }) => {
      const org = orgIn(scope, params.org)
      if (!senders.isHeld(org.id, params.address)) throw new ApiError(404, `${params.address} is not held in ${org.name}`)
      const n = call(() => senders.release(params.address, org.name))
      audit(principal, 'sender-release', `${params.address} of ${org.name}: ${n} deliveries`)
      return { released: n }
    },
  })

  const dkimView = (domain: string, info: { selector: string; enabled: boolean; record: string } | null): z.infer<typeof Dkim_> => ({
    domain,
    selector: info?.selector ?? null,
    signing: info?.enabled ?? false,
    record: info ? { name: `${info.selector}._domainkey.${domain}`, type: 'TXT', value: info.record } : null,
    zone_line: info ? zoneLine({ domain, ...info }) : null,
  })
  const hasKey = db.prepare(`SELECT dkim_private_key IS NOT NULL FROM domains WHERE id = ?`).pluck()

  api.add({
    method: 'get', path: '/api/v1/admin/organisations/:org/domains/:domain/dkim', tag: 'DKIM', summary: "The domain's DKIM key: its DNS record to publish, and whether Moat signs", params: DomainParam,
    response: Dkim_,
    run: ({ scope, params }) => {
      const org = orgIn(scope, params.org)
      const d = domainIn(org, params.domain)
      return dkimView(d.name, hasKey.get(d.id) ? dkim.info(d.name) : null)
    },
  })

  api.add({
    method: 'post', path: '/api/v1/admin/organisations/:org/domains/:domain/dkim', tag: 'DKIM',
    summary: 'make: a key (nothing changes if there is one); enable / disable: signing on (publish the record first) or off; rotate: a new key under a new selector, signing off until its record is published',
    params: DomainParam, body: z.object({ action: z.enum(['make', 'enable', 'disable', 'rotate']) }),
    response: Dkim_,
    run: ({ principal, scope, params, body }) => {
      const org = orgIn(scope, params.org)
      const d = domainIn(org, params.domain)
      const info = dkim.info(d.name, { enable: body.action === 'enable' ? true : body.action === 'disable' ? false : undefined, rotate: body.action === 'rotate' })
      audit(principal, `dkim-${body.action}`, d.name)
      return dkimView(d.name, info)
    },
  })

  api.add({
    method: 'get', path: '/api/v1/admin/routes', tag: 'routes', summary: "Transport routes (appliance admin): mail for a domain to a host instead of its MX; * is the smarthost for all other mail",
    response: z.object({ items: z.array(Route_) }),
    run: ({ principal }) => {
      only(principal, ['appliance_admin'], 'see transport routes')
      return { items: transport.list() }
    },
  })

  api.add({
    method: 'put', path: '/api/v1/admin/routes/:domain', tag: 'routes', summary: 'Set the route for a domain, or * (appliance admin; idempotent)',
    params: z.object({ domain: z.string().min(1).max(253) }), body: z.object({ host: z.string().min(1).max(260).describe('HOST[:PORT]') }),
    response: Route_,
    run: ({ principal, params, body }) => {
      only(principal, ['appliance_admin'], 'set transport routes')
      const r = call(() => transport.add(params.domain, body.host))
      audit(principal, 'route-add', `${r.domain} -> ${r.host}:${r.port}`)
      return r
    },
  })

  api.add({
    method: 'delete', path: '/api/v1/admin/routes/:domain', tag: 'routes', summary: 'Remove a route (appliance admin)',
    params: z.object({ domain: z.string().min(1).max(253) }),
    response: z.object({ removed: z.boolean() }),
    run: ({ principal, params }) => {
      only(principal, ['appliance_admin'], 'remove transport routes')
      const had = transport.list().some((r) => r.domain === params.domain.trim().toLowerCase())
      if (!had) throw new ApiError(404, `no route for ${params.domain}`)
      transport.remove(params.domain)
      audit(principal, 'route-remove', params.domain)
      return { removed: true }
    },
  })
}
