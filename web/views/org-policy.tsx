/* The organisation policy form: thresholds, what happens to viruses, attachments, DMARC failures and unstamped bounces, retention, outbound limits. */
import type { Session } from '../../appliance/services/accounts'
import { ATTACHMENT_ACTIONS, BACKSCATTER_ACTIONS, DMARC_ACTIONS, type Organisation, VIRUS_ACTIONS } from '../../appliance/services/tenants'
import { Csrf } from './layout'

const LABELS: Record<string, string> = {
  reject: 'refuse (5xx)',
  quarantine: 'quarantine',
  strip: 'strip, deliver the rest with a warning',
  honour: "honour the sender's policy",
  score: 'only score it',
  tag: 'deliver tagged',
  off: 'deliver',
}

function Choice(props: { name: string; label: string; value: string; options: readonly string[] }) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        {props.options.map((o) => <option value={o} selected={o === props.value}>{LABELS[o] ?? o}</option>)}
      </select>
    </label>
  )
}

function NumberField(props: { name: string; label: string; value: number; step?: string }) {
  return (
    <label>
      {props.label}
      <input type="number" name={props.name} value={String(props.value)} step={props.step ?? '1'} min="0" required />
    </label>
  )
}

export function PolicyForm(props: { org: Organisation; session: Session }) {
  const o = props.org
  return (
    <form method="post" action={`/orgs/${o.id}/policy`} class="policy" id="policy">
      <Csrf session={props.session} />
      <fieldset>
        <legend>Spam</legend>
        <NumberField name="spam_threshold" label="Spam at score" value={o.spam_threshold} step="0.1" />
        <NumberField name="surespam_threshold" label="Surespam at score" value={o.surespam_threshold} step="0.1" />
      </fieldset>
      <fieldset>
        <legend>Threats</legend>
        <Choice name="virus_action" label="Viruses" value={o.virus_action} options={VIRUS_ACTIONS} />
        <Choice name="attachment_action" label="Dangerous attachments" value={o.attachment_action} options={ATTACHMENT_ACTIONS} />
        <Choice name="dmarc_action" label="Failing DMARC" value={o.dmarc_action} options={DMARC_ACTIONS} />
        <Choice name="backscatter_action" label="Bounces without our stamp" value={o.backscatter_action} options={BACKSCATTER_ACTIONS} />
        <label class="check">
          <input type="checkbox" name="allowlist_skips_rbl_delay" value="1" checked={o.allowlist_skips_rbl_delay === 1} />
          Allow-listed senders skip the blocklist delay (off: listed servers are delayed whoever vouches for the sender)
        </label>
      </fieldset>
      <fieldset>
        <legend>Learning</legend>
        <label class="check">
          <input type="checkbox" name="learn_outbound" value="1" checked={o.learn_outbound === 1} />
          The users' outbound mail teaches what wanted mail looks like (fingerprints only; forwards excepted)
        </label>
        <label class="check">
          <input type="checkbox" name="share_learning" value="1" checked={o.share_learning === 1} />
          What these users report protects the MSP's other customers (hashes only, never text or addresses)
        </label>
      </fieldset>
      <fieldset>
        <legend>Limits and retention</legend>
        <NumberField name="max_message_mb" label="Largest message (MB)" value={Math.round(o.max_message_bytes / 1048576)} />
        <NumberField name="archive_retention_days" label="Archive (days)" value={o.archive_retention_days} />
        <NumberField name="quarantine_retention_days" label="Quarantine (days)" value={o.quarantine_retention_days} />
        <NumberField name="outbound_hourly_limit" label="Outbound per sender per hour" value={o.outbound_hourly_limit} />
        <NumberField name="outbound_spam_limit" label="Outbound spam per sender per hour before holding" value={o.outbound_spam_limit} />
      </fieldset>
      <button type="submit">Save policy</button>
    </form>
  )
}
