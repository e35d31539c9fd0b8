/*
 * npm run image:test — boots the built image under QEMU the way an installer would meet it:
 * on a virtual disk larger than the image (the root filesystem must grow to fill it), waits
 * for the console screen's one-time setup link (read from the serial console), runs the
 * setup wizard over HTTPS (admin, first organisation, its domain and mail server, a new host
 * name, and under BIOS a fixed address in place of DHCP), waits for the console to show the
 * new name and the grown disk, sends one message to the appliance's SMTP port and checks
 * that it reaches the "customer's server", a sink on this machine, stamped with the new name.
 * Under BIOS it then cuts the power (QEMU killed while mail is sent) and boots again: every
 * message answered 250 must still arrive. The guest is kept off every network (restrict=on);
 * its only way out is a guestfwd to that sink. Saves the serial console log in artifacts/image/.
 *
 * usage: node dist/test/image/boot.js [IMAGE.qcow2] [bios|uefi|secureboot]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import { SMTPServer } from 'smtp-server'
import { freePort, message, ROOT, smtpSend } from '../helpers/appliance'

const image = path.resolve(process.argv[2] ?? path.join(ROOT, 'packer/output/moat.qcow2'))
const firmware = (process.argv[3] ?? 'bios') as 'bios' | 'uefi' | 'secureboot'
const artifacts = path.join(ROOT, 'artifacts/image')
const serialLog = path.join(artifacts, `boot-${firmware}.log`)
const TIMEOUT_MS = Number(process.env.MOAT_IMAGE_BOOT_TIMEOUT_S ?? 900) * 1000
const DISK = '8G'
const HOSTNAME = 'mx1.example.com'

function post(port: number, pathname: string, form: Record<string, string>): Promise<{ status: number; location?: string; body: string }> {
  const body = new URLSearchParams(form).toString()
  return new Promise((resolve, reject) => {
    const req = https.request(
      // The appliance's own self-signed certificate: what an installer meets on first boot.
      { host: '127.0.0.1', port, path: pathname, method: 'POST', rejectUnauthorized: false, headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        let text = ''
        res.on('data', (d) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

async function waitFor<T>(what: string, fn: () => Promise<T | null> | T | null, deadline: number): Promise<T> {
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2000))
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(image)) throw new Error(`no image at ${image}; build it with npm run image`)
  fs.mkdirSync(artifacts, { recursive: true })
  fs.rmSync(serialLog, { force: true })
  const received: { to: string[]; data: string }[] = []
  let sinkDown = false
  const sink = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onData(stream, session, cb) {
      let data = ''
      stream.on('data', (d) => (data += d))
      stream.on('end', () => {
        // The customer's server down for a while (the power cut below): the appliance keeps the mail.
        if (sinkDown) return cb(Object.assign(new Error('try again later'), { responseCode: 451 }))
        received.push({ to: session.envelope.rcptTo.map((r) => r.address), data })
        cb()
      })
    },
  })
  const sinkPort = await freePort()
  await new Promise<void>((r) => sink.listen(sinkPort, '127.0.0.1', r))
  const [smtpPort, webPort] = [await freePort(), await freePort()]
  // guestfwd runs this for each connection the guest opens to 10.0.2.100:25: a pipe to the
  // sink (a chardev would be one connection, opened before the guest even boots).
  const pipe = path.join(artifacts, 'guestfwd-pipe.js')
  fs.writeFileSync(pipe, `const s = require('net').connect(${sinkPort}, '127.0.0.1'); process.stdin.pipe(s); s.pipe(process.stdout); s.on('close', () => process.exit(0)); s.on('error', () => process.exit(1))\n`)
  // As in packer/build.sh: KVM only when asked for (a /dev/kvm may be there and hang Linux).
  const accel = process.env.MOAT_IMAGE_ACCEL === 'kvm' ? 'kvm' : 'tcg'
  const fw: string[] = []
  let machine = 'q35'
  if (firmware !== 'bios') {
    // Secure Boot: OVMF built with it, Microsoft's keys enrolled, enforced; Debian's signed shim
    // and GRUB must pass it.
    const secure = firmware === 'secureboot'
    const vars = path.join(artifacts, `OVMF_VARS-${firmware}.fd`)
    fs.copyFileSync(secure ? '/usr/share/OVMF/OVMF_VARS_4M.ms.fd' : '/usr/share/OVMF/OVMF_VARS_4M.fd', vars)
    const code = secure ? '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd' : '/usr/share/OVMF/OVMF_CODE_4M.fd'
    if (secure) {
      machine = 'q35,smm=on'
      fw.push('-global', 'driver=cfi.pflash01,property=secure,value=on')
    }
    fw.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${code}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`)
  }
  // The installer's bigger disk: an overlay on the image, so the image itself stays as built.
  const disk = path.join(artifacts, `disk-${firmware}.qcow2`)
  fs.rmSync(disk, { force: true })
  const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image, disk, DISK], { encoding: 'utf8' })
  if (made.status !== 0) throw new Error(`qemu-img create: ${made.stderr}`)
  const imageMiB = JSON.parse(spawnSync('qemu-img', ['info', '--output=json', image], { encoding: 'utf8' }).stdout)['virtual-size'] / 1048576
  const started = Date.now()
  // QEMU's default cache mode (writeback): what the guest flushed is in the file, what it had
  // not yet written is in its own memory, and is lost when QEMU is killed (the power cut below).
  const boot = (log: string): ChildProcess =>
    spawn('qemu-system-x86_64', [
      '-machine', machine, '-accel', accel, '-m', '2048', '-smp', '2', ...fw,
      '-drive', `file=${disk},if=virtio`,
      '-netdev', `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${smtpPort}-:25,hostfwd=tcp:127.0.0.1:${webPort}-:443,guestfwd=tcp:10.0.2.100:25-cmd:${process.execPath} ${pipe}`,
      '-device', 'virtio-net,netdev=n0', '-serial', `file:${log}`, '-display', 'none', '-monitor', 'none',
    ], { stdio: 'inherit' })
  let qemu = boot(serialLog)
  const deadline = started + TIMEOUT_MS
  try {
    const serial = () => (fs.existsSync(serialLog) ? fs.readFileSync(serialLog, 'latin1') : '')
    const log = (m: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${m}`)
    const token = await waitFor('the setup link on the console', () => /moat-setup-token: ([A-Za-z0-9_-]{20,})/.exec(serial())?.[1] ?? null, deadline)
    const consoleAt = Date.now()
    log('setup link on the console')
    // QEMU's user network: 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3, as DHCP gives it.
    const network: Record<string, string> = firmware === 'bios' ? { net_mode: 'static', address: '10.0.2.15/24', gateway: '10.0.2.2', dns: '10.0.2.3' } : { net_mode: 'dhcp' }
    const setup = await post(webPort, '/setup', {
      token, email: 'admin@example.com', password: 'image boot test password', org: 'acme', domain: 'example.com', deliver_to: '10.0.2.100:25', catch_all: 'on',
      hostname: HOSTNAME, ...network,
    })
    if (setup.status !== 200 || !setup.body.includes(`now called <strong>${HOSTNAME}</strong>`)) throw new Error(`setup wizard answered ${setup.status}: ${setup.body.slice(0, 500)}`)
    log(`setup wizard done (${network.net_mode})`)
    const shown = await waitFor('the console to show the new host name', () => new RegExp(`moat-hostname: ${HOSTNAME.replace(/\./g, '\\.')} moat-root-mib: (\\d+)`).exec(serial()), deadline)
    const rootMiB = Number(shown[1])
    log(`console: ${HOSTNAME}, root filesystem ${rootMiB} MiB on a ${DISK} disk (image ${imageMiB} MiB)`)
    if (rootMiB < imageMiB + 1024) throw new Error(`the root filesystem did not grow to the disk: ${rootMiB} MiB`)
    const banner = await waitFor('SMTP 250 for the message', async () => {
      const r = await smtpSend(smtpPort, { from: 'sender@outside.test', to: ['alice@example.com'], data: message({ From: 'sender@outside.test', To: 'alice@example.com', Subject: 'through the appliance image', Date: new Date().toUTCString(), 'Message-ID': '<image-boot@outside.test>' }, 'One message through a freshly booted Moat.\n') }).catch(() => null)
      log(`SMTP: ${r ? `${r.final.code} ${r.final.text}` : 'no connection'}`)
      return r && r.final.code === 250 ? r : null
    }, deadline)
    const smtpAt = Date.now()
    const got = await waitFor('the message at the sink', () => received.find((m) => m.data.includes('through the appliance image')) ?? null, deadline)
    const doneAt = Date.now()
    if (!got.data.includes(`by ${HOSTNAME} (Moat)`)) throw new Error(`the message was not handled under the new host name:\n${got.data.slice(0, 800)}`)
    if (firmware === 'secureboot' && !/secureboot: Secure boot enabled/.test(serial())) throw new Error('the kernel did not report Secure Boot enabled')
    console.log(`image boot test (${firmware}, ${accel}): passed`)
    console.log(`| step | seconds since QEMU start |\n|---|---|`)
    console.log(`| console setup link | ${((consoleAt - started) / 1000).toFixed(0)} |`)
    console.log(`| SMTP accepted the message (${banner.final.text.slice(0, 40)}) | ${((smtpAt - started) / 1000).toFixed(0)} |`)
    console.log(`| delivered to the sink | ${((doneAt - started) / 1000).toFixed(0)} |`)
    if (firmware === 'bios') {
      qemu = await powerLoss({
        smtpPort, received, kill: () => qemu, boot: () => boot(path.join(artifacts, 'boot-bios-after-power-loss.log')), log, deadline,
        sinkDown: (down) => (sinkDown = down),
      })
    }
  } finally {
    qemu.kill('SIGKILL')
    sink.close()
    fs.rmSync(disk, { force: true })
  }
}

/**
 * The power cut: while the customer's server is refusing (so acknowledged mail is only on the
 * appliance's disk) and mail is still being sent, QEMU is killed outright: the guest loses its
 * page cache and whatever its file systems had not committed. After the next boot, with the
 * customer's server back, every message the appliance answered 250 must arrive (a duplicate
 * is allowed: SMTP's own window between a server's 250 and the sender's record of it).
 */
async function powerLoss(o: {
  smtpPort: number; received: { data: string }[]; kill: () => ChildProcess; boot: () => ChildProcess; log: (m: string) => void; deadline: number
  sinkDown: (down: boolean) => void
}): Promise<ChildProcess> {
  // The customer's server refuses for now, so that what is acknowledged is only on the
  // appliance's disk (spool, database, queue) when the power goes.
  o.sinkDown(true)
  const acked: string[] = []
  let sent = 0
  let cut = false
  const worker = async () => {
    while (!cut) {
      const id = `power-${++sent}`
      const r = await smtpSend(o.smtpPort, { from: 'sender@outside.test', to: ['alice@example.com'], data: message({ From: 'sender@outside.test', To: 'alice@example.com', Subject: id, Date: new Date().toUTCString(), 'Message-ID': `<${id}@outside.test>` }, 'One message through a freshly booted Moat.\n') }).catch(() => null)
      if (r?.final.code === 250 && !cut) {
        acked.push(id)
        if (acked.length % 4 === 0) o.log(`${acked.length} acknowledged`)
      }
    }
  }
  const workers = Array.from({ length: 4 }, worker)
  await waitFor('messages acknowledged before the power cut', () => acked.length >= 12 || null, o.deadline)
  // Right after a 250: the last ones are on their way to disk, in the queue or being delivered.
  cut = true
  o.kill().kill('SIGKILL')
  await Promise.all(workers)
  const atCut = new Set(o.received.map((m) => /^Subject: (power-\d+)/m.exec(m.data)?.[1]))
  o.log(`power cut after ${acked.length} acknowledged messages (${acked.filter((id) => atCut.has(id)).length} delivered by then)`)
  o.sinkDown(false)
  const qemu = o.boot()
  // Deferred mail is tried again on Haraka's schedule (the first retry after a minute).
  const lost = await waitFor('every acknowledged message at the sink after the power cut', () => {
    const got = new Set(o.received.map((m) => /^Subject: (power-\d+)/m.exec(m.data)?.[1]))
    return acked.every((id) => got.has(id)) ? [] : null
  }, Math.min(o.deadline, Date.now() + 10 * 60_000)).catch(() => {
    const got = new Set(o.received.map((m) => /^Subject: (power-\d+)/m.exec(m.data)?.[1]))
    return acked.filter((id) => !got.has(id))
  })
  const counts = new Map<string, number>()
  for (const m of o.received) {
    const id = /^Subject: (power-\d+)/m.exec(m.data)?.[1]
    if (id) counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  const twice = [...counts.values()].filter((n) => n > 1).length
  o.log(`after the power cut: ${acked.length - lost.length} of ${acked.length} acknowledged messages delivered, ${twice} twice`)
  if (lost.length) throw new Error(`power loss lost ${lost.length} acknowledged messages: ${lost.join(' ')}`)
  console.log(`| power cut: acknowledged messages lost | 0 of ${acked.length} (${twice} delivered twice) |`)
  return qemu
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`image boot test (${firmware}) FAILED: ${(err as Error).message}; serial console log: ${serialLog}`)
    process.exit(1)
  },
)
