/* The moat command line: help everywhere, clear errors, bulk import, offline scan. */
import fs from 'node:fs'
import path from 'node:path'
import { corpusDir } from '../../appliance/engine/training'
import t from 'tap'
import { COMMANDS } from '../../appliance/cli/main'
import { helpText, parseCommandArgs } from '../../appliance/cli/command'
import { moat, moatOk } from '../helpers/appliance'

const CORPUS = path.join(corpusDir(), 'dev')

t.test('every command has --help', async (t) => {
  const dir = t.testdir()
  // In this process for each of the ~150 commands (a process each took minutes of CI), and
  // through the real program for a few.
  for (const c of COMMANDS) {
    const best = COMMANDS.filter((x) => x.path.every((w, i) => c.path[i] === w)).sort((a, b) => b.path.length - a.path.length)[0]
    t.equal(best, c, `${c.path.join(' ')} is reached by its own words`)
    t.equal(parseCommandArgs(c, ['--help']).opts.help, true, c.path.join(' '))
    t.match(helpText(c), new RegExp(`^usage: moat ${c.path.join(' ')}`), c.path.join(' '))
  }
  for (const words of [['backup', 'schedule'], ['track'], ['directory', 'set'], ['org', 'add']]) {
    const r = moat(dir, [...words, '--help'])
    t.equal(r.code, 0, words.join(' '))
    t.match(r.stdout, new RegExp(`^usage: moat ${words.join(' ')}`))
  }
  t.equal(moat(dir, ['--help']).code, 0)
})

t.test('usage errors exit 2 and refusals exit 1, each with one clear line', async (t) => {
  const dir = t.testdir()
  t.equal(moat(dir, ['no-such-command']).code, 2)
  t.equal(moat(dir, ['domain', 'add', 'x.test']).code, 2)
  t.equal(moat(dir, ['org', 'list', '--bogus']).code, 2)
  const r = moat(dir, ['user', 'add', 'a@unprovisioned.test'])
  t.equal(r.code, 1)
  t.match(r.stderr, /^moat user add: domain "unprovisioned.test" is not provisioned/)
})

t.test('user import: header or bare list, errors reported, re-runnable', async (t) => {
  const dir = t.testdir({
    'users.csv': 'email,display_name,role\nann@example.com,Ann,user\n"ben@example.com","Ben, Jr.",org_admin\nbroken\nzed@unknown.test,,\n',
    'plain.csv': 'cat@example.com\ndan@example.com\n',
  })
  moatOk(dir, ['org', 'add', 'acme'])
  moatOk(dir, ['domain', 'add', 'example.com', '--org', 'acme', '--deliver-to', '127.0.0.1:2600'])
  const r = moat(dir, ['user', 'import', path.join(dir, 'users.csv'), '--json'])
  t.equal(r.code, 1, 'rows with errors make the exit code 1')
  const out = JSON.parse(r.stdout)
  t.equal(out.created, 2)
  t.same(out.errors.map((e: { line: number }) => e.line), [4, 5])
  const again = JSON.parse(moat(dir, ['user', 'import', path.join(dir, 'users.csv'), '--json']).stdout)
  t.equal(again.created, 0)
  t.equal(again.skipped, 2)
  moatOk(dir, ['user', 'import', path.join(dir, 'plain.csv')])
  const users = JSON.parse(moatOk(dir, ['user', 'list', '--json']))
  t.same(users.map((u: { email: string }) => u.email), ['ann@example.com', 'ben@example.com', 'cat@example.com', 'dan@example.com'])
  t.equal(users.find((u: { email: string }) => u.email === 'ben@example.com').display_name, 'Ben, Jr.')
})

t.test('scan prints one JSON line per message', async (t) => {
  const dir = t.testdir()
  const spamDir = path.join(CORPUS, 'spam/sa-spam')
  const files = fs.readdirSync(spamDir).sort().slice(0, 3).map((f) => path.join(spamDir, f))
  const r = moat(dir, ['scan', ...files])
  t.equal(r.code, 0)
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
  t.equal(lines.length, 3)
  for (const l of lines) {
    t.same(Object.keys(l), ['file', 'verdict', 'score', 'symbols'])
    t.match(l.verdict, /^(clean|spam|surespam)$/)
  }
  t.ok(lines.some((l) => l.verdict !== 'clean'))
})

t.test('train and learn store new model versions', async (t) => {
  const dir = t.testdir()
  const ham = path.join(CORPUS, 'ham/sa-easy_ham')
  const spam = path.join(CORPUS, 'spam/sa-spam')
  const small = t.testdir({ ham: {}, spam: {} })
  for (const f of fs.readdirSync(ham).slice(0, 20)) fs.copyFileSync(path.join(ham, f), path.join(small, 'ham', f))
  for (const f of fs.readdirSync(spam).slice(0, 20)) fs.copyFileSync(path.join(spam, f), path.join(small, 'spam', f))
  t.match(moatOk(dir, ['train', '--ham', path.join(small, 'ham'), '--spam', path.join(small, 'spam')]), /model 1 trained on 20 ham and 20 spam/)
  t.match(moatOk(dir, ['learn', '--spam', path.join(small, 'spam', fs.readdirSync(path.join(small, 'spam'))[0])]), /model 2: learned 1 spam/)
})
