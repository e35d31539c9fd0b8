/*
 * What changed between two inventories of a host (the host page's "changed since"): the
 * system, CPU, memory, file systems, network addresses and installed software. An upgrade
 * is one line with both versions, not a removal and an addition.
 */

export interface InventoryChange {
  /** "os", "memory", "fs /var", "network eth0", "software openssl" … */
  what: string
  before: string | null
  after: string | null
}

interface Inventory {
  os?: { distro?: string; release?: string; kernel?: string }
  cpu?: { brand?: string; cores?: number }
  mem?: { total?: number }
  fs?: { mount: string; size: number }[]
  network?: { iface: string; ip4?: string; ip6?: string }[]
  software?: { name: string; version: string }[]
}

const gib = (b: number | undefined) => (b ? `${(b / 2 ** 30).toFixed(1)} GiB` : null)

function compareMaps(out: InventoryChange[], prefix: string, before: Map<string, string>, after: Map<string, string>): void {
  for (const key of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const b = before.get(key) ?? null
    const a = after.get(key) ?? null
    if (b !== a) out.push({ what: `${prefix} ${key}`, before: b, after: a })
  }
}

export function inventoryChanges(previous: unknown, current: unknown): InventoryChange[] {
  const p = (previous ?? {}) as Inventory
  const c = (current ?? {}) as Inventory
  const out: InventoryChange[] = []
  const one = (what: string, b: string | null, a: string | null) => {
    if (b !== a) out.push({ what, before: b, after: a })
  }
  const os = (i: Inventory) => (i.os ? `${i.os.distro ?? ''} ${i.os.release ?? ''} (kernel ${i.os.kernel ?? '?'})`.trim() : null)
  one('os', os(p), os(c))
  const cpu = (i: Inventory) => (i.cpu ? `${i.cpu.brand ?? ''}, ${i.cpu.cores ?? '?'} cores` : null)
  one('cpu', cpu(p), cpu(c))
  one('memory', gib(p.mem?.total), gib(c.mem?.total))
  compareMaps(out, 'fs', new Map((p.fs ?? []).map((f) => [f.mount, gib(f.size) ?? '0'])), new Map((c.fs ?? []).map((f) => [f.mount, gib(f.size) ?? '0'])))
  const addr = (n: { ip4?: string; ip6?: string }) => [n.ip4, n.ip6].filter(Boolean).join(' ')
  compareMaps(out, 'network', new Map((p.network ?? []).map((n) => [n.iface, addr(n)])), new Map((c.network ?? []).map((n) => [n.iface, addr(n)])))
  compareMaps(out, 'software', new Map((p.software ?? []).map((s) => [s.name, s.version])), new Map((c.software ?? []).map((s) => [s.name, s.version])))
  return out
}
