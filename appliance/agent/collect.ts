/*
 * What an agent reports, read with systeminformation (one library for Linux and Windows).
 * Inventory: the machine and its software, daily and at start. Metrics: a minute's worth of
 * load. Only what the console shows and alerts on is kept, so a report stays small.
 */
import { execFile } from 'node:child_process'
import os from 'node:os'
import si from 'systeminformation'

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 30_000 }, (err, out) => resolve(err ? '' : out)))
}

/** Installed packages on Debian (dpkg); empty elsewhere (Windows: the uninstall keys, later). */
async function installedSoftware(): Promise<{ name: string; version: string }[]> {
  if (process.platform !== 'linux') return []
  const out = await run('dpkg-query', ['-W', '-f=${Package}\t${Version}\n'])
  return out.split('\n').filter(Boolean).map((l) => {
    const [name, version] = l.split('\t')
    return { name, version }
  })
}

export async function inventory(version: string): Promise<Record<string, unknown>> {
  const [system, osInfo, cpu, mem, fs, net, software] = await Promise.all([
    si.system(), si.osInfo(), si.cpu(), si.mem(), si.fsSize(), si.networkInterfaces(), installedSoftware(),
  ])
  return {
    version,
    hostname: os.hostname(),
    system: { manufacturer: system.manufacturer, model: system.model, serial: system.serial, uuid: system.uuid, virtual: system.virtual },
    os: { platform: osInfo.platform, distro: osInfo.distro, release: osInfo.release, kernel: osInfo.kernel, arch: osInfo.arch },
    cpu: { brand: `${cpu.manufacturer} ${cpu.brand}`.trim(), cores: cpu.cores, physicalCores: cpu.physicalCores, speed: cpu.speed },
    mem: { total: mem.total, swaptotal: mem.swaptotal },
    fs: fs.map((f) => ({ mount: f.mount, type: f.type, size: f.size, used: f.used })),
    network: (Array.isArray(net) ? net : [net]).filter((n) => !n.internal).map((n) => ({ iface: n.iface, ip4: n.ip4, ip6: n.ip6, mac: n.mac, speed: n.speed })),
    software,
  }
}

/**
 * A minute's figures. Network and disk rates are per second since the previous call
 * (systeminformation keeps the last counters; the first call of a process has none yet).
 */
export async function metrics(): Promise<Record<string, number | null>> {
  const [load, mem, fs, procs, net, io] = await Promise.all([
    si.currentLoad(), si.mem(), si.fsSize(), si.processes(), si.networkStats('*').catch(() => []), si.fsStats().catch(() => null),
  ])
  const external = (Array.isArray(net) ? net : []).filter((n) => n.iface !== 'lo' && !/^loopback/i.test(n.iface))
  const rate = (v: (number | null)[]) => (v.some((x) => typeof x === 'number' && x >= 0) ? v.reduce<number>((a, x) => a + (typeof x === 'number' && x > 0 ? x : 0), 0) : null)
  return {
    netRx: rate(external.map((n) => n.rx_sec)),
    netTx: rate(external.map((n) => n.tx_sec)),
    diskRead: io && typeof io.rx_sec === 'number' && io.rx_sec >= 0 ? io.rx_sec : null,
    diskWrite: io && typeof io.wx_sec === 'number' && io.wx_sec >= 0 ? io.wx_sec : null,
    cpu: load.currentLoad,
    load1: os.loadavg()[0],
    memUsed: mem.active,
    memTotal: mem.total,
    swapUsed: mem.swapused,
    diskUse: Math.max(0, ...fs.map((f) => f.use ?? 0)),
    processes: procs.all,
  }
}
