/* What every CLI command opens: settings, the database and the services over it. */
import { databasePath, loadSettings, spoolDir, type Settings } from '../config'
import { openDatabase, type Db } from '../db/database'
import { Archive } from '../services/archive'
import { Quarantine } from '../services/quarantine'
import { RawStore } from '../services/raw-store'
import { Spool } from '../services/spool'
import { Tenants } from '../services/tenants'

export interface Appliance {
  settings: Settings
  db: Db
  spool: Spool
  tenants: Tenants
  quarantine: Quarantine
  archive: Archive
}

let opened: Appliance | null = null

export function appliance(): Appliance {
  if (opened) return opened
  const settings = loadSettings()
  const db = openDatabase(databasePath(settings.dataDir))
  const spool = new Spool(spoolDir(settings.dataDir))
  opened = { settings, db, spool, tenants: new Tenants(db), quarantine: new Quarantine(db), archive: new Archive(db, new RawStore(db, spool)) }
  return opened
}
