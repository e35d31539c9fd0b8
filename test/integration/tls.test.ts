/*
 * TLS on the SMTP and submission ports, checked with openssl s_client for what testssl.sh
 * flags: old protocols, weak ciphers, client-initiated renegotiation, a certificate valid for
 * too long. And the renewal of our own self-signed certificate.
 */
import { spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { ensureCertificate } from '../../appliance/tls'
import { type RunningSmtp, startSmtp, workDir } from '../helpers/appliance'

let dir: string
let smtp: RunningSmtp

t.before(async () => {
  dir = workDir(t)
  smtp = await startSmtp(dir)
})
t.teardown(() => smtp?.stop())

function sClient(port: number, args: string[], input = 'QUIT\r\n'): { ok: boolean; out: string } {
  const r = spawnSync('openssl', ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${port}`, ...args], { input, encoding: 'utf8', timeout: 20_000 })
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` }
}

t.test('only TLS 1.2 and 1.3, with forward-secret AEAD ciphers', async (t) => {
  for (const port of [smtp.port, smtp.submissionPort]) {
    t.notOk(sClient(port, ['-tls1_1']).ok, `TLS 1.1 refused on ${port}`)
    const v12 = sClient(port, ['-tls1_2', '-brief'])
    t.ok(v12.ok, 'TLS 1.2 works')
    t.match(v12.out, /Ciphersuite: ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)/)
    t.notOk(sClient(port, ['-tls1_2', '-cipher', 'AES128-SHA:DES-CBC3-SHA:ECDHE-RSA-AES128-SHA']).ok, 'CBC and non-PFS suites refused')
    t.match(sClient(port, ['-brief']).out, /Protocol version: TLSv1\.3/)
  }
})

t.test('client-initiated renegotiation is refused', async (t) => {
  // s_client renegotiates on a line that is just "R"; the input is fed all at once, so wait for
  // the session first with a command that needs an answer.
  const r = spawnSync('bash', ['-c', `(printf 'EHLO x\\r\\n'; sleep 1; printf 'R\\n'; sleep 2) | openssl s_client -starttls smtp -connect 127.0.0.1:${smtp.submissionPort} -tls1_2`], { encoding: 'utf8', timeout: 20_000 })
  const out = `${r.stdout}${r.stderr}`
  t.match(out, /RENEGOTIATING/)
  t.match(out, /no renegotiation/)
})

t.test('our own certificate: at most 397 days, renewed when it runs out; an admin certificate is left alone', async (t) => {
  const cert = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'tls/cert.pem')))
  const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000
  t.ok(days <= 398, `valid for ${days} days`)

  const other = workDir(t)
  const make = (daysValid: number) =>
    spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', String(daysValid), '-subj', '/CN=old',
      '-keyout', path.join(other, 'tls/key.pem'), '-out', path.join(other, 'tls/cert.pem')])
  fs.mkdirSync(path.join(other, 'tls'), { recursive: true })
  make(5)
  const adminCert = fs.readFileSync(path.join(other, 'tls/cert.pem'), 'utf8')
  ensureCertificate(other, 'moat.test', () => {})
  t.equal(fs.readFileSync(path.join(other, 'tls/cert.pem'), 'utf8'), adminCert, "without our marker it is the admin's: not replaced")
  fs.writeFileSync(path.join(other, 'tls/self-signed'), 'ours\n')
  const logs: string[] = []
  ensureCertificate(other, 'moat.test', (m) => logs.push(m))
  const renewed = new crypto.X509Certificate(fs.readFileSync(path.join(other, 'tls/cert.pem')))
  t.match(renewed.subject, /CN=moat\.test/, 'renewed')
  t.match(logs.join('\n'), /expires in \d days; making a new one/)
  t.ok(crypto.createPrivateKey(fs.readFileSync(path.join(other, 'tls/key.pem'))).asymmetricKeyType === 'ec', 'with a new key beside it')
  t.ok(renewed.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(path.join(other, 'tls/key.pem')))), 'key and certificate match')
  // Renamed in the setup wizard: ours follows the new name; the same name keeps it.
  ensureCertificate(other, 'moat.test', (m) => logs.push(m))
  t.equal(new crypto.X509Certificate(fs.readFileSync(path.join(other, 'tls/cert.pem'))).serialNumber, renewed.serialNumber, 'same name, still valid: kept')
  ensureCertificate(other, 'mx1.example.com', (m) => logs.push(m))
  t.match(new crypto.X509Certificate(fs.readFileSync(path.join(other, 'tls/cert.pem'))).subjectAltName, /DNS:mx1\.example\.com/)
  t.match(logs.join('\n'), /now called mx1\.example\.com; making a new self-signed certificate/)
})

t.test('SMTP and web starting together make one certificate, not two halves', async (t) => {
  const dir = workDir(t)
  const script = `const r = require(${JSON.stringify(path.join(__dirname, '../../appliance/tls.js'))}).ensureCertificate(process.argv[1], 'race.test', () => {});
const c = require('crypto'), f = require('fs');
console.log(new c.X509Certificate(f.readFileSync(r.cert)).checkPrivateKey(c.createPrivateKey(f.readFileSync(r.key))) ? 'match' : 'mismatch')`
  const { spawn } = require('node:child_process')
  const runs = await Promise.all(
    [1, 2, 3, 4].map(
      () =>
        new Promise<string>((resolve) => {
          let out = ''
          const p = spawn(process.execPath, ['-e', script, dir])
          p.stdout.on('data', (d: Buffer) => (out += d))
          p.on('exit', () => resolve(out.trim()))
        }),
    ),
  )
  t.same(runs, ['match', 'match', 'match', 'match'])
  t.notOk(fs.existsSync(path.join(dir, 'tls/.lock')), 'no lock left behind')
})
