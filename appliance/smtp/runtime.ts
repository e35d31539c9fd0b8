/*
 * The state the Haraka plugins share inside one SMTP process: one database handle, the
 * spool, the group committer, the classifier model. Plugins are loaded with a real
 * require(), so this module is a per-process singleton.
 */
import { loadSettings, databasePath, spoolDir, type Settings } from '../config'
import { openDatabase, type Db } from '../db/database'
import { GroupCommitter } from '../db/group-commit'
import type { LogisticModel } from '../engine/logistic'
import { latestModelId, loadActiveModel } from '../engine/models'
import { MailStore } from '../services/mail-store'
import { Recipients } from '../services/recipients'
import { RawStore } from '../services/raw-store'
import { Spool } from '../services/spool'
import { Tenants } from '../services/tenants'
import { RelayControl } from '../services/relay'
import { BounceKeys } from '../services/bounce-keys'
import type { FingerprintIndex } from '../learning/fingerprint-index'
import { SyncedIndex } from '../learning/fingerprint-store'

export interface Runtime {
  settings: Settings
  db: Db
  raws: RawStore
  store: MailStore
  committer: GroupCommitter
  recipients: Recipients
  tenants: Tenants
  relay: RelayControl
  /** Replaced by moat-bounce when its config sets another validity window. */
  bounceKeys: BounceKeys
  /** The classifier model; reloaded when a newer one is trained (checked every few seconds). */
  model(): LogisticModel
  /** The campaign fingerprints; what was stored since the last look is loaded every second or two. */
  fingerprints(): FingerprintIndex
}

let current: Runtime | null = null

export function runtime(): Runtime {
  if (current) return current
  const settings = loadSettings()
  const db = openDatabase(databasePath(settings.dataDir))
  const raws = new RawStore(db, new Spool(spoolDir(settings.dataDir)))
  let active = loadActiveModel(db)
  let checkedAt = Date.now()
  const committer = new GroupCommitter(db)
  const fingerprints = new SyncedIndex(db)
  fingerprints.sync()
  let syncedAt = Date.now()
  current = {
    settings,
    committer,
    db,
    raws,
    store: new MailStore(db, raws, committer),
    recipients: new Recipients(db),
    tenants: new Tenants(db),
    relay: new RelayControl(db),
    bounceKeys: new BounceKeys(db),
    model() {
      if (Date.now() - checkedAt > 5000) {
        checkedAt = Date.now()
        if (latestModelId(db) !== active.newestStoredId) active = loadActiveModel(db)
      }
      return active.model
    },
    fingerprints() {
      if (Date.now() - syncedAt > 2000) {
        syncedAt = Date.now()
        fingerprints.sync()
      }
      return fingerprints.index
    },
  }
  return current
}
