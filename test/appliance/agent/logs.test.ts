/*
 * The agent's log readers. journald: a real journal file, written by systemd-journal-remote
 * from journald's export format and read by the real journalctl. Windows: no Windows machine
 * here, so the parser reads outputs in the formats Microsoft documents for
 * `Get-WinEvent | Select-Object … | ConvertTo-Json` (see each sample below).
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { JOURNAL_CURSOR_KEY, parseWinEvents, readJournal, winEventCommand, winEventTime, windowsMaxLevel, windowsPriority } from '../../../appliance/agent/logs'
import { takeLogs } from '../../../appliance/agent/run'
import { AgentState } from '../../../appliance/agent/state'
import { JOURNAL_REMOTE, writeJournal } from '../../helpers/journal'

t.test('journald: lines at warning and worse, from the saved cursor, saved with their report', async (t) => {
  if (!fs.existsSync(JOURNAL_REMOTE)) return t.fail(`${JOURNAL_REMOTE} is missing (Debian package systemd-journal-remote; test/run.sh installs it)`)
  const dir = t.testdir({ journal: {}, agent: {} })
  const journal = path.join(dir, 'journal')
  const now = Date.now()
  writeJournal(journal, [
    { at: now - 3 * 3_600_000, priority: 3, ident: 'old', message: 'before the agent started: not sent' },
    { at: now - 60_000, priority: 3, unit: 'nginx.service', message: 'upstream timed out' },
    { at: now - 50_000, priority: 6, ident: 'CRON', message: 'session opened: info, not sent' },
    { at: now - 40_000, priority: 4, ident: 'kernel', message: 'EXT4-fs warning: ümlaut and all' },
  ])
  const state = new AgentState(path.join(dir, 'agent'))
  t.teardown(() => state.close())
  t.equal(await takeLogs(state, { logPriority: 4, journalDir: journal }, 'linux'), 2, 'the last hour, warning and worse')
  const sent = () => state.next(100, 1e9).filter((r) => r.kind === 'logs').flatMap((r) => JSON.parse(r.data).entries)
  t.same(sent().map((e: { source: string; priority: number; message: string }) => [e.source, e.priority, e.message]), [
    ['nginx.service', 3, 'upstream timed out'],
    ['kernel', 4, 'EXT4-fs warning: ümlaut and all'],
  ])
  t.ok(state.get(JOURNAL_CURSOR_KEY), 'the cursor saved with the report')
  t.equal(await takeLogs(state, { logPriority: 4, journalDir: journal }, 'linux'), 0, 'nothing new: nothing sent again')

  writeJournal(journal, [{ at: now - 1000, priority: 2, unit: 'sshd.service', message: 'fatal: new line' }])
  t.equal(await takeLogs(state, { logPriority: 4, journalDir: journal }, 'linux'), 1, 'only what came after the cursor')
  t.equal(sent().length, 3)

  // A busy journal is read in batches, each with its own cursor: nothing skipped, nothing twice.
  writeJournal(journal, Array.from({ length: 25 }, (_, i) => ({ at: now + i, priority: 3, ident: 'burst', message: `line ${i}` })))
  const first = await readJournal(state.get(JOURNAL_CURSOR_KEY), 4, { directory: journal, limit: 10 })
  t.same(first.entries.map((e) => e.message), Array.from({ length: 10 }, (_, i) => `line ${i}`))
  const second = await readJournal(first.position!.value, 4, { directory: journal, limit: 10 })
  t.same(second.entries.map((e) => e.message), Array.from({ length: 10 }, (_, i) => `line ${i + 10}`))
})

t.test('journald: a journal that cannot be read is an error, not an empty success', async (t) => {
  await t.rejects(readJournal(null, 4, { directory: '/nonexistent/journal' }), /journalctl failed/)
  const dir = t.testdir({ agent: {} })
  const state = new AgentState(path.join(dir, 'agent'))
  t.teardown(() => state.close())
  await t.rejects(takeLogs(state, { logPriority: 4, journalDir: '/nonexistent/journal' }, 'linux'))
  t.equal(state.get(JOURNAL_CURSOR_KEY), null, 'no cursor moved')
})

t.test('Windows: Get-WinEvent | ConvertTo-Json, as Windows PowerShell 5.1 and PowerShell 7 print it', async (t) => {
  // Windows PowerShell 5.1 (Windows Server 2016-2025): ConvertTo-Json writes a DateTime as
  // "\/Date(<ms since the epoch>)\/" (Microsoft Learn, ConvertTo-Json, "DateTime objects").
  // An array when several events match, a bare object when one does.
  const ps51 = String.raw`[{"RecordId":48213,"TimeCreated":"\/Date(1765101600000)\/","Level":2,"ProviderName":"Service Control Manager","LogName":"System","Message":"The Print Spooler service terminated unexpectedly."},
 {"RecordId":48211,"TimeCreated":"\/Date(1765101500000)\/","Level":3,"ProviderName":"Microsoft-Windows-Time-Service","LogName":"System","Message":"NtpClient was unable to set a domain peer.\r\n"}]`
  const r = parseWinEvents(ps51, 'System')
  t.equal(r.lastRecordId, 48213, 'the newest record id is the bookmark')
  t.same(r.entries, [
    { at: 1765101500000, priority: 4, source: 'System/Microsoft-Windows-Time-Service', message: 'NtpClient was unable to set a domain peer.' },
    { at: 1765101600000, priority: 3, source: 'System/Service Control Manager', message: 'The Print Spooler service terminated unexpectedly.' },
  ], 'oldest first, levels mapped onto syslog priorities')
  const one = String.raw`{"RecordId":7,"TimeCreated":"\/Date(1765101700000)\/","Level":1,"ProviderName":"Microsoft-Windows-Kernel-Power","LogName":"System","Message":null}`
  t.same(parseWinEvents(one, 'System').entries, [{ at: 1765101700000, priority: 2, source: 'System/Microsoft-Windows-Kernel-Power', message: '' }], 'one event is a bare object; Critical is crit')
  // PowerShell 7: DateTime as ISO 8601 with the offset (Microsoft Learn, ConvertTo-Json, 7.x).
  t.equal(winEventTime('2026-12-07T10:00:00.1234567+01:00'), Date.parse('2026-12-07T09:00:00.123Z'))
  t.same(parseWinEvents('', 'Application'), { entries: [], lastRecordId: null }, 'no output: no events')

  t.same([1, 2, 3, 4, 0, 5].map(windowsPriority), [2, 3, 4, 6, 6, 7])
  t.equal(windowsMaxLevel(4), 3, 'warning and worse is Level 1 to 3')
  t.match(winEventCommand('Application', 900, 3), /-FilterXPath '\*\[System\[\(Level=1 or Level=2 or Level=3\) and EventRecordID > 900\]\]'/)
})
