/*
 * moat-rules: the outbreak rules an admin edits (rules table): who + what + action, over
 * the message and the symbols every earlier filter raised. Ships with the rules that fought
 * the fake-UPS outbreak (UPS_NOT_FROM_UPS, UPS_BAD_TRACKING_NUMBER).
 *
 * Hooks: data_post (load after the filters, before moat-scorer).
 * Symbols: RULE_<NAME>, weighing what the rule says (score: its score; spam: the highest spam
 *   threshold of the recipients' organisations; surespam: 1000; tag and strip: 0). reject
 *   answers 554. strip removes the attachments the rule's {"attachment": …} conditions match
 *   (each replaced by Moat-Attachment-Warning.txt, as moat-attachments strips): that copy is
 *   delivered to the organisations the rule applies to, the original kept in their quarantine.
 * Callback: a rule condition {"callback": "invalid"} asks the sender domain's MX whether the
 *   envelope sender exists ([callback] port, timeout_ms; MOAT_CALLBACK_PORT in tests), cached.
 * Failure: a rule that cannot be evaluated is logged and skipped; an internal error is 451.
 * Untrusted input: the message (conditions only read it, over bounded text).
 */
import { attachmentPatterns, evaluate } from '../../appliance/engine/rules'
import { stripAttachments } from '../../appliance/engine/strip-attachments'
import type { Symbol } from '../../appliance/engine/symbols'
import { SenderCallback } from '../../appliance/services/callback'
import { type Rule, Rules } from '../../appliance/services/rules'
import { addSymbols, collectSymbols, constants, DSN, guarded, moatNotes, parsedMessage, rawMessage, type HarakaConnection, type HarakaPlugin, type Next } from '../../appliance/smtp/haraka'
import { runtime } from '../../appliance/smtp/runtime'

export function register(this: HarakaPlugin): void {
  this.load_config()
  this.register_hook('data_post', 'apply_rules')
}

export function load_config(this: HarakaPlugin): void {
  this.cfg = this.config.get('moat-rules.ini', () => this.load_config())
  const rt = runtime()
  this.rules = new Rules(rt.db)
  this.cached = { until: 0, in: [], out: [] }
  this.callback = new SenderCallback({
    dnsServer: rt.settings.dnsServer,
    port: Number(process.env.MOAT_CALLBACK_PORT) || Number(this.cfg.callback?.port) || 25,
    timeoutMs: Number(this.cfg.callback?.timeout_ms) || 10_000,
    helo: rt.settings.hostname,
  })
}

export function apply_rules(this: HarakaPlugin, next: Next, connection: HarakaConnection): void {
  guarded(this, next, async (done) => {
    const txn = connection.transaction!
    const rt = runtime()
    const orgIds = new Set(moatNotes(txn).rcpts.map((r) => r.orgId))
    const input = { msg: await parsedMessage(txn), mailFrom: txn.mail_from.address || '', rcpts: moatNotes(txn).rcpts.map((r) => r.address), symbols: collectSymbols(txn) }
    const spamWeight = Math.max(...[...orgIds].map((id) => rt.tenants.orgById(id)?.spam_threshold ?? 5))
    const fired: Symbol[] = []
    const matched: number[] = []
    const strips: Rule[] = []
    // Re-read at most every two seconds: an edited rule applies within that, and the hot
    // path does not query and parse the rules table once per message.
    if (this.cached.until < Date.now()) this.cached = { until: Date.now() + 2000, in: this.rules.active('in'), out: this.rules.active('out') }
    const active: Rule[] = connection.relaying ? this.cached.out : this.cached.in
    // The callback costs a round trip to the sender's server: only when a rule asks for it.
    if (input.mailFrom && active.some((r) => JSON.stringify(r.what).includes('"callback"'))) {
      ;(input as { callback?: string }).callback = await this.callback.verify(input.mailFrom)
    }
    for (const rule of active) {
      if (rule.org_id !== null && !orgIds.has(rule.org_id)) continue
      let hit = false
      try {
        hit = evaluate(rule.what, input)
      } catch (err) {
        this.logerror(`moat-rules: rule ${rule.name} failed and was skipped: ${err}`)
      }
      if (!hit) continue
      matched.push(rule.id)
      if (rule.action === 'reject') {
        recordMatches(this.rules, matched)
        return done(constants.DENY, DSN.create(554, `Message refused by rule ${rule.name}`, 7, 1))
      }
      if (rule.action === 'strip') strips.push(rule)
      const weight = { score: rule.score, spam: spamWeight, surespam: 1000, tag: 0, strip: 0 }[rule.action]
      fired.push({ name: `RULE_${rule.name}`, detail: rule.description.slice(0, 120), weight })
    }
    recordMatches(this.rules, matched)
    addSymbols(txn, this, fired)
    if (strips.length) await strip(txn, strips, [...orgIds])
    done()
  })
}

/** Strips what the matched strip rules name, on top of what moat-attachments already stripped. */
async function strip(txn: Parameters<typeof moatNotes>[0], rules: Rule[], orgIds: number[]): Promise<void> {
  const notes = moatNotes(txn)
  const patterns = rules.map((r) => ({ name: r.name, res: attachmentPatterns(r.what) }))
  const result = await stripAttachments(notes.stripped?.raw ?? (await rawMessage(txn)), (filename) => {
    const by = patterns.find((p) => p.res.some((re) => re.test(filename)))
    return by ? `removed by the rule ${by.name}` : null
  })
  if (!result) return
  const ruleOrgs = new Set([...(notes.stripped?.ruleOrgs ?? []), ...rules.flatMap((r) => (r.org_id === null ? orgIds : [r.org_id]))])
  notes.stripped = { raw: result.raw, removed: [...(notes.stripped?.removed ?? []), ...result.removed], dangerous: notes.stripped?.dangerous ?? false, ruleOrgs: [...ruleOrgs] }
}

function recordMatches(rules: Rules, ids: number[]): void {
  if (!ids.length) return
  const now = Date.now()
  // Counts ride the next group commit; losing one in a crash is harmless.
  void runtime()
    .committer.submit(() => rules.countMatches(ids, now))
    .catch(() => {})
}
