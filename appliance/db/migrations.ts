/*
 * The schema, as one append-only list of steps. Step N brings the database to
 * `PRAGMA user_version = N`. Never edit or reorder a step that has shipped: add one.
 *
 * Conventions: INTEGER PRIMARY KEY ids, `*_at` columns are Unix milliseconds, every row that
 * belongs to a tenant carries `org_id`, enum-like columns have a CHECK.
 */
export const migrations: readonly string[] = [
  // 1: tenants, mail, quarantine, archive, delivery outbox, classifier models
  `
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE msps (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  ) STRICT;
  INSERT INTO msps (id, name, created_at) VALUES (1, 'local', CAST(unixepoch('subsec') * 1000 AS INTEGER));

  CREATE TABLE organisations (
    id INTEGER PRIMARY KEY,
    msp_id INTEGER NOT NULL REFERENCES msps(id),
    name TEXT NOT NULL UNIQUE,
    spam_threshold REAL NOT NULL DEFAULT 5.0,
    surespam_threshold REAL NOT NULL DEFAULT 10.0,
    max_message_bytes INTEGER NOT NULL DEFAULT 52428800,
    archive_retention_days INTEGER NOT NULL DEFAULT 365 CHECK (archive_retention_days > 0),
    quarantine_retention_days INTEGER NOT NULL DEFAULT 30 CHECK (quarantine_retention_days > 0),
    suspended_at INTEGER,
    created_at INTEGER NOT NULL,
    CHECK (surespam_threshold >= spam_threshold)
  ) STRICT;

  CREATE TABLE domains (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    deliver_host TEXT NOT NULL,
    deliver_port INTEGER NOT NULL DEFAULT 25 CHECK (deliver_port BETWEEN 1 AND 65535),
    tag_mode INTEGER NOT NULL DEFAULT 0 CHECK (tag_mode IN (0, 1)),
    catch_all INTEGER NOT NULL DEFAULT 0 CHECK (catch_all IN (0, 1)),
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX domains_org ON domains(org_id);

  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'org_admin')),
    password_hash TEXT,
    digest_enabled INTEGER NOT NULL DEFAULT 0 CHECK (digest_enabled IN (0, 1)),
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX users_org ON users(org_id);
  CREATE INDEX users_domain ON users(domain_id);

  CREATE TABLE aliases (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    address TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX aliases_user ON aliases(user_id);

  -- The bytes of each accepted message, exactly as received, stored once per SMTP
  -- transaction. Small messages live in the database (one fsync per group commit covers
  -- them); large ones in a dated spool file.
  CREATE TABLE raw_messages (
    id INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    data BLOB,
    spool_path TEXT,
    CHECK ((data IS NULL) <> (spool_path IS NULL))
  ) STRICT;

  -- One row per organisation a message was accepted for.
  CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    raw_id INTEGER NOT NULL REFERENCES raw_messages(id),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    received_at INTEGER NOT NULL,
    queue_id TEXT NOT NULL,
    client_ip TEXT,
    helo TEXT,
    mail_from TEXT NOT NULL,
    rcpt_to TEXT NOT NULL,
    from_header TEXT,
    subject TEXT,
    message_id_header TEXT,
    size INTEGER NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('clean', 'spam', 'surespam')),
    score REAL NOT NULL,
    symbols TEXT NOT NULL
  ) STRICT;
  CREATE INDEX messages_org_received ON messages(org_id, received_at);
  CREATE INDEX messages_raw ON messages(raw_id);

  -- LiveArchive full-text index; rowid = messages.id. Contentless: the text is derived from
  -- the spool file, so it is not stored twice.
  CREATE VIRTUAL TABLE archive_fts USING fts5(
    sender, recipients, subject, body,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
  );

  CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    rcpt TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('spam', 'surespam')),
    created_at INTEGER NOT NULL,
    released_at INTEGER
  ) STRICT;
  CREATE INDEX quarantine_org_created ON quarantine(org_id, created_at);
  CREATE INDEX quarantine_rcpt ON quarantine(rcpt);
  CREATE INDEX quarantine_message ON quarantine(message_id);

  -- The delivery outbox: one row per recipient to hand to Haraka's outbound queue. 'pending'
  -- rows are (re)handed by the SMTP process; this is also how a crash between our commit and
  -- Haraka's queue file is recovered.
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    rcpt TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('clean', 'tagged', 'released')),
    state TEXT NOT NULL DEFAULT 'pending'
      CHECK (state IN ('pending', 'queued', 'deferred', 'delivered', 'bounced')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_response TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX deliveries_pending ON deliveries(state) WHERE state = 'pending';
  CREATE INDEX deliveries_message ON deliveries(message_id);

  CREATE TABLE classifier_models (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('logistic')),
    description TEXT NOT NULL,
    messages INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  `,

  // 2: DNSBL delay: when a listed client was first seen, so it is delayed once, not forever
  `
  CREATE TABLE dnsbl_delays (
    ip TEXT PRIMARY KEY,
    zone TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  ) STRICT;
  `,

  // 3: the Authentication-Results header written when the message was accepted; it is added
  // on delivery, since the archive keeps the bytes exactly as received
  `
  ALTER TABLE messages ADD COLUMN auth_results TEXT;
  `,

  // 4: outbreak rules (who + what + action), with match counts, and the shipped UPS set
  `
  CREATE TABLE rules (
    id INTEGER PRIMARY KEY,
    org_id INTEGER REFERENCES organisations(id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    direction TEXT NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out', 'both')),
    who TEXT NOT NULL DEFAULT '{}',
    what TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('score', 'spam', 'surespam', 'reject', 'tag')),
    score REAL NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    matches INTEGER NOT NULL DEFAULT 0,
    last_match_at INTEGER,
    created_at INTEGER NOT NULL
  ) STRICT;
  INSERT INTO rules (name, description, what, action, score, created_at) VALUES
  ('UPS_NOT_FROM_UPS',
   'Mail that presents itself as UPS (sender name, subject or sender address) is accepted only if it authenticates as ups.com (aligned SPF or DKIM).',
   '{"all":[{"any":[{"fromName":"(^|[^a-z])UPS([^a-z]|$)"},{"subject":"(^|[^a-z])UPS([^a-z]|$)"},{"fromDomain":"(^|[.])ups[.]com$"},{"body":"United Parcel Service"}]},{"not":{"authenticatedAs":"ups.com"}}]}',
   'surespam', 0, CAST(unixepoch('subsec') * 1000 AS INTEGER)),
  ('UPS_BAD_TRACKING_NUMBER',
   'In mail about a UPS delivery, a tracking number that does not start with 1Z followed by 16 letters or digits is fake.',
   '{"all":[{"any":[{"fromName":"(^|[^a-z])UPS([^a-z]|$)"},{"subject":"(^|[^a-z])UPS([^a-z]|$)"},{"body":"(^|[^a-z])UPS([^a-z]|$)"}]},{"extract":"tracking *(number|no[.]?|#|id)? *[:#]? *([a-z0-9]{8,35})","notMatching":"^1Z[0-9a-z]{16}$"}]}',
   'score', 6, CAST(unixepoch('subsec') * 1000 AS INTEGER));
  `,
  // 5: the outbound smarthost: relay networks per organisation, transport routes, bounce
  // keys (BATV), per-domain DKIM keys, held senders, per-sender counters, the backscatter
  // policy and outbound quarantine
  `
  CREATE TABLE relay_networks (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    cidr TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX relay_networks_org ON relay_networks(org_id);

  -- Static routes for outbound mail, as Postfix's transport map: '*' routes everything
  -- (a smarthost upstream); a domain routes that domain. Without a route, DNS MX.
  CREATE TABLE transport_routes (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    port INTEGER NOT NULL DEFAULT 25 CHECK (port BETWEEN 1 AND 65535),
    created_at INTEGER NOT NULL
  ) STRICT;

  -- Keys of the bounce-address stamps. Generated at first start, rotated; a key stays
  -- usable for checking until every stamp made with it has expired.
  CREATE TABLE bounce_keys (
    id INTEGER PRIMARY KEY,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
  ) STRICT;

  -- DKIM: a key per domain, made when first asked for; signing starts when the admin says
  -- the DNS record is published (a signature no receiver can check helps nobody).
  ALTER TABLE domains ADD COLUMN dkim_selector TEXT;
  ALTER TABLE domains ADD COLUMN dkim_private_key TEXT;
  ALTER TABLE domains ADD COLUMN dkim_enabled INTEGER NOT NULL DEFAULT 0 CHECK (dkim_enabled IN (0, 1));

  ALTER TABLE organisations ADD COLUMN backscatter_action TEXT NOT NULL DEFAULT 'quarantine'
    CHECK (backscatter_action IN ('quarantine', 'reject', 'tag', 'off'));
  ALTER TABLE organisations ADD COLUMN outbound_hourly_limit INTEGER NOT NULL DEFAULT 1000
    CHECK (outbound_hourly_limit > 0);
  ALTER TABLE organisations ADD COLUMN outbound_spam_limit INTEGER NOT NULL DEFAULT 10
    CHECK (outbound_spam_limit > 0);

  -- The SMTP AUTH login an outbound message was sent with (null: a registered mail server).
  ALTER TABLE messages ADD COLUMN sender_login TEXT;

  ALTER TABLE quarantine ADD COLUMN direction TEXT NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out'));

  -- A held delivery stays in the outbox until its sender is released.
  ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1));

  -- Outbound senders per hour: messages sent and how many were spam or virus.
  CREATE TABLE sender_counts (
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    hour INTEGER NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0,
    spam INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, address, hour)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE held_senders (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    held_at INTEGER NOT NULL,
    released_at INTEGER
  ) STRICT;
  CREATE UNIQUE INDEX held_senders_active ON held_senders(org_id, address) WHERE released_at IS NULL;

  -- Alerts for admins (held senders, own IP listed); the UI and digests read them.
  CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    org_id INTEGER REFERENCES organisations(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    acknowledged_at INTEGER
  ) STRICT;
  CREATE INDEX alerts_open ON alerts(created_at) WHERE acknowledged_at IS NULL;
  `,
  // 6: delivery monitoring: every outbound delivery attempt, and per destination IP per hour
  `
  CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    queue_id TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    domain TEXT NOT NULL,
    mx_host TEXT,
    ip TEXT,
    port INTEGER,
    tls INTEGER NOT NULL DEFAULT 0 CHECK (tls IN (0, 1)),
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'deferred', 'bounced', 'failed')),
    class TEXT NOT NULL,
    code INTEGER,
    response TEXT,
    connect_ms INTEGER,
    total_ms INTEGER,
    attempt INTEGER NOT NULL,
    recipients INTEGER NOT NULL DEFAULT 1
  ) STRICT;
  CREATE INDEX delivery_attempts_at ON delivery_attempts(at);
  CREATE INDEX delivery_attempts_ip ON delivery_attempts(ip, at);

  CREATE TABLE delivery_hourly (
    ip TEXT NOT NULL,
    hour INTEGER NOT NULL,
    domain TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    deferred INTEGER NOT NULL DEFAULT 0,
    bounced INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    timeouts INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    resources INTEGER NOT NULL DEFAULT 0,
    greylisted INTEGER NOT NULL DEFAULT 0,
    rbl INTEGER NOT NULL DEFAULT 0,
    connect_ms_sum INTEGER NOT NULL DEFAULT 0,
    connect_count INTEGER NOT NULL DEFAULT 0,
    total_ms_sum INTEGER NOT NULL DEFAULT 0,
    total_ms_max INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ip, hour)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX delivery_hourly_hour ON delivery_hourly(hour);
  `,
  // 7: the appliance's own outbound addresses on public blocklists, over time
  `
  CREATE TABLE rbl_listings (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    zone TEXT NOT NULL,
    codes TEXT NOT NULL,
    listed_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    delisted_at INTEGER
  ) STRICT;
  CREATE UNIQUE INDEX rbl_listings_open ON rbl_listings(ip, zone) WHERE delisted_at IS NULL;

  CREATE TABLE rbl_checks (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    ips INTEGER NOT NULL,
    zones INTEGER NOT NULL,
    listed INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    ms INTEGER NOT NULL
  ) STRICT;
  `,
  // 8: web accounts: appliance and MSP admins (mailbox users log in as themselves), sessions,
  // login throttling, the audit log; the quarantine listed per user
  `
  CREATE TABLE admins (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('appliance_admin', 'msp_admin')),
    msp_id INTEGER NOT NULL DEFAULT 1 REFERENCES msps(id),
    totp_secret TEXT,
    created_at INTEGER NOT NULL
  ) STRICT;

  -- id is the SHA-256 of the cookie's token: a copy of the database does not log anyone in.
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('admin', 'user')),
    principal_id INTEGER NOT NULL,
    csrf TEXT NOT NULL,
    ip TEXT,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX sessions_principal ON sessions(kind, principal_id);

  CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX login_failures_key ON login_failures(key, at);

  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    org_id INTEGER,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
  ) STRICT;
  CREATE INDEX audit_log_org ON audit_log(org_id, at);

  CREATE INDEX quarantine_user_created ON quarantine(user_id, created_at);
  CREATE INDEX quarantine_created ON quarantine(created_at);
  `,
  // 9: allow and block lists of senders, per organisation or per user; and whether an
  // allow-listed sender skips the deliberate blocklist delay (off: the long-standing policy)
  `
  CREATE TABLE sender_lists (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('allow', 'block')),
    pattern TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;
  CREATE UNIQUE INDEX sender_lists_entry ON sender_lists(org_id, coalesce(user_id, 0), kind, pattern);
  CREATE INDEX sender_lists_pattern ON sender_lists(org_id, pattern);

  ALTER TABLE organisations ADD COLUMN allowlist_skips_rbl_delay INTEGER NOT NULL DEFAULT 0
    CHECK (allowlist_skips_rbl_delay IN (0, 1));
  `,
  // 10: API tokens for the client agents, per user or admin; only their hash is kept
  `
  CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('admin', 'user')),
    principal_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX api_tokens_principal ON api_tokens(kind, principal_id);
  `,
  // 11: spam digests: each user's choice (off by default, as the step-1 schema has it), and
  // single-use release links that expire
  `
  ALTER TABLE users ADD COLUMN digest_frequency TEXT NOT NULL DEFAULT 'daily'
    CHECK (digest_frequency IN ('hourly', 'every4h', 'daily'));
  ALTER TABLE users ADD COLUMN digest_include_surespam INTEGER NOT NULL DEFAULT 0 CHECK (digest_include_surespam IN (0, 1));
  ALTER TABLE users ADD COLUMN digest_last_sent_at INTEGER;

  CREATE TABLE release_tokens (
    token_hash TEXT PRIMARY KEY,
    quarantine_id INTEGER NOT NULL REFERENCES quarantine(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  ) STRICT;
  CREATE INDEX release_tokens_expiry ON release_tokens(expires_at);
  `,
  // 12: TOTP second factor for every account (required by policy for appliance and MSP admins)
  `
  ALTER TABLE users ADD COLUMN totp_secret TEXT;
  ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
  ALTER TABLE admins ADD COLUMN totp_last_step INTEGER;
  ALTER TABLE sessions ADD COLUMN mfa_pending INTEGER NOT NULL DEFAULT 0 CHECK (mfa_pending IN (0, 1));
  `,
  // 13: password reset by e-mail: single-use links that expire; only their hash is kept
  `
  CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('admin', 'user')),
    principal_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  ) STRICT;
  `,
  // 14: per-organisation actions for viruses, dangerous attachments and DMARC; why a
  // quarantine entry is there (a virus or a stripped attachment is released by admins only);
  // the bytes delivered when they differ from those received (attachments stripped); whether
  // an end user sees surespam; and the organisation an admin's session is switched into
  `
  ALTER TABLE organisations ADD COLUMN virus_action TEXT NOT NULL DEFAULT 'reject'
    CHECK (virus_action IN ('reject', 'quarantine'));
  ALTER TABLE organisations ADD COLUMN attachment_action TEXT NOT NULL DEFAULT 'quarantine'
    CHECK (attachment_action IN ('strip', 'quarantine', 'reject'));
  ALTER TABLE organisations ADD COLUMN dmarc_action TEXT NOT NULL DEFAULT 'honour'
    CHECK (dmarc_action IN ('honour', 'score'));
  ALTER TABLE quarantine ADD COLUMN reason TEXT NOT NULL DEFAULT 'score'
    CHECK (reason IN ('score', 'virus', 'attachment', 'backscatter', 'blocked'));
  ALTER TABLE messages ADD COLUMN delivered_raw_id INTEGER REFERENCES raw_messages(id);
  CREATE INDEX messages_delivered_raw ON messages(delivered_raw_id) WHERE delivered_raw_id IS NOT NULL;
  -- The delivery monitor for one destination domain.
  CREATE INDEX delivery_attempts_domain ON delivery_attempts(domain, at);
  -- The organisations dashboard's "deferred or bounced" count.
  CREATE INDEX deliveries_problems ON deliveries(org_id, updated_at) WHERE state IN ('deferred', 'bounced');

  -- Surespam is quarantined quietly: an end user sees it only after choosing to.
  ALTER TABLE users ADD COLUMN show_surespam INTEGER NOT NULL DEFAULT 0 CHECK (show_surespam IN (0, 1));

  -- An MSP or appliance admin working inside one organisation's view ("switch into").
  ALTER TABLE sessions ADD COLUMN view_org_id INTEGER REFERENCES organisations(id) ON DELETE SET NULL;
  `,
  // 15: outbreak rules may strip the attachments they match. SQLite cannot change a CHECK in
  // place: the table is copied into one with the new CHECK (nothing refers to rules.id).
  `
  CREATE TABLE rules_15 (
    id INTEGER PRIMARY KEY,
    org_id INTEGER REFERENCES organisations(id) ON DELETE CASCADE,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    direction TEXT NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out', 'both')),
    who TEXT NOT NULL DEFAULT '{}',
    what TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('score', 'spam', 'surespam', 'reject', 'tag', 'strip')),
    score REAL NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    matches INTEGER NOT NULL DEFAULT 0,
    last_match_at INTEGER,
    created_at INTEGER NOT NULL
  ) STRICT;
  INSERT INTO rules_15 SELECT id, org_id, name, description, direction, who, what, action, score, enabled, matches, last_match_at, created_at FROM rules;
  DROP TABLE rules;
  ALTER TABLE rules_15 RENAME TO rules;
  `,
  // 16: user reports are recorded and learned in batches (engine/reports.ts); the messages,
  // with what only the receiving server could know of them (symbols: blocklists,
  // authentication), are kept to retrain and measure the engine on a site's own mail.
  `
  CREATE TABLE classifier_reports (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL CHECK (label IN ('spam', 'ham')),
    sha256 TEXT NOT NULL,
    raw BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    symbols TEXT NOT NULL DEFAULT '',
    reported_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    learned_model_id INTEGER
  ) STRICT;
  CREATE INDEX classifier_reports_sha256 ON classifier_reports(sha256);
  CREATE INDEX classifier_reports_pending ON classifier_reports(id) WHERE learned_model_id IS NULL;
  -- A report of delivered spam finds the archived original by its Message-ID.
  CREATE INDEX messages_message_id ON messages(message_id_header);
  `,
  // 17: at every start the deliveries Haraka should hold are checked against its queue
  // directory (smtp/queue-reconcile.ts); this keeps that from reading every delivery ever made.
  `
  CREATE INDEX deliveries_in_flight ON deliveries(state) WHERE state IN ('queued', 'deferred');
  `,
  // 18: password throttling that a stranger cannot turn into a lock-out (sign-in/password-guard.ts):
  // the browsers (hashed device cookies) and networks an account signed in from before.
  `
  CREATE TABLE sign_in_trust (
    account TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'network')),
    value TEXT NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (account, kind, value)
  ) STRICT, WITHOUT ROWID;
  DELETE FROM login_failures;
  `,
  // 19: the fleet console (fleet/console.ts): enrollment tokens per organisation (hashes only),
  // the hosts enrolled with them (their agents' Ed25519 public keys) and what they report,
  // keyed by (host, sequence) so that a report sent twice is stored once.
  `
  CREATE TABLE fleet_tokens (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    uses_left INTEGER CHECK (uses_left IS NULL OR uses_left >= 0),
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
  ) STRICT;
  CREATE TABLE fleet_hosts (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES organisations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('appliance', 'linux', 'windows')),
    public_key TEXT NOT NULL,
    version TEXT,
    os TEXT,
    enrolled_at INTEGER NOT NULL,
    last_seen_at INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER
  ) STRICT;
  CREATE INDEX fleet_hosts_org ON fleet_hosts(org_id);
  CREATE TABLE fleet_reports (
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (host_id, seq)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX fleet_reports_kind ON fleet_reports(host_id, kind, seq);
  `,
  // 20: fleet incidents (fleet/watch.ts): one open incident per host and rule, its alert, and
  // whether the MSP's webhook has had its open and resolve events.
  `
  CREATE TABLE fleet_incidents (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    rule TEXT NOT NULL,
    detail TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    resolved_at INTEGER,
    alert_id INTEGER,
    open_sent_at INTEGER,
    resolve_sent_at INTEGER
  ) STRICT;
  CREATE UNIQUE INDEX fleet_incidents_open ON fleet_incidents(host_id, rule) WHERE resolved_at IS NULL;
  CREATE INDEX fleet_incidents_unsent ON fleet_incidents(id) WHERE open_sent_at IS NULL OR resolve_sent_at IS NULL;
  `,
  // 21: commands queued for hosts (fleet/console.ts), run when the host next reports.
  `
  CREATE TABLE fleet_commands (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    done_at INTEGER,
    ok INTEGER,
    output TEXT
  ) STRICT;
  CREATE INDEX fleet_commands_pending ON fleet_commands(host_id) WHERE done_at IS NULL;
  `,
  // 22: fleet metrics as columns (fleet/metrics.ts): a row a sample (a minute), kept two days,
  // and hourly sums kept 400 days, so a month of a host stays small and a 30-day plot reads
  // 720 rows; the latest figures on the host row, for fleet-wide filters ("disk over 90 %").
  // Logs the agents send (journald, Windows event logs), searchable per host. Metric reports
  // already stored are moved over.
  `
  CREATE TABLE fleet_metrics (
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    cpu REAL, load1 REAL, mem_used INTEGER, mem_total INTEGER, swap_used INTEGER, disk_use REAL,
    processes INTEGER, net_rx REAL, net_tx REAL, disk_read REAL, disk_write REAL,
    PRIMARY KEY (host_id, at, seq)
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE fleet_metrics_hourly (
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    cpu_sum REAL, cpu_max REAL, load1_sum REAL, mem_pct_sum REAL, disk_max REAL,
    processes_sum REAL, net_rx_sum REAL, net_tx_sum REAL, disk_read_sum REAL, disk_write_sum REAL,
    PRIMARY KEY (host_id, hour)
  ) STRICT, WITHOUT ROWID;
  ALTER TABLE fleet_hosts ADD COLUMN cpu REAL;
  ALTER TABLE fleet_hosts ADD COLUMN mem_pct REAL;
  ALTER TABLE fleet_hosts ADD COLUMN disk_use REAL;
  INSERT OR IGNORE INTO fleet_metrics (host_id, at, seq, cpu, load1, mem_used, mem_total, swap_used, disk_use, processes)
    SELECT host_id, at, seq, body ->> 'cpu', body ->> 'load1', body ->> 'memUsed', body ->> 'memTotal', body ->> 'swapUsed', body ->> 'diskUse', body ->> 'processes'
    FROM fleet_reports WHERE kind = 'metrics';
  INSERT INTO fleet_metrics_hourly (host_id, hour, samples, cpu_sum, cpu_max, load1_sum, mem_pct_sum, disk_max, processes_sum)
    SELECT host_id, at / 3600000, count(*), sum(cpu), max(cpu), sum(load1), sum(100.0 * mem_used / nullif(mem_total, 0)), max(disk_use), sum(processes)
    FROM fleet_metrics GROUP BY host_id, at / 3600000;
  DELETE FROM fleet_reports WHERE kind = 'metrics';
  CREATE TABLE fleet_logs (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 7),
    source TEXT NOT NULL,
    message TEXT NOT NULL
  ) STRICT;
  CREATE INDEX fleet_logs_host ON fleet_logs(host_id, at);
  `,
  // 23: installed software per host, from its newest inventory (fleet/console.ts), so that
  // "software:openssl<3.0.11" across 10,000 hosts is an index lookup, not 10,000 JSON parses.
  `
  CREATE TABLE fleet_software (
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (host_id, name)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX fleet_software_name ON fleet_software(name, host_id);
  INSERT OR IGNORE INTO fleet_software (host_id, name, version)
    SELECT r.host_id, lower(s.value ->> 'name'), coalesce(s.value ->> 'version', '')
    FROM fleet_reports r, json_each(r.body, '$.software') s
    WHERE r.kind = 'inventory' AND s.value ->> 'name' IS NOT NULL
      AND r.seq = (SELECT max(r2.seq) FROM fleet_reports r2 WHERE r2.host_id = r.host_id AND r2.kind = 'inventory');
  `,
  // 24: a command's argument (fleet/console.ts: the release URL of apply-update).
  `
  ALTER TABLE fleet_commands ADD COLUMN arg TEXT;
  `,
  // 25: fleet incidents mailed to the MSP (fleet/alert-mail.ts): when each event went out.
  `
  ALTER TABLE fleet_incidents ADD COLUMN open_mailed_at INTEGER;
  ALTER TABLE fleet_incidents ADD COLUMN resolve_mailed_at INTEGER;
  `,
  // 26: digests people act on (services/digests.ts): the sender an organisation's digests come
  // from (NULL: quarantine@ its first domain), and one-click unsubscribe links (RFC 8058),
  // stored as hashes like release links.
  `
  ALTER TABLE organisations ADD COLUMN digest_from TEXT;
  CREATE TABLE digest_unsubscribe_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX digest_unsubscribe_expiry ON digest_unsubscribe_tokens(expires_at);
  `,
  // 27: the desktop notifier's Web Push subscriptions (notifier/push.ts): where each browser
  // wants its "N new spam" notifications, how often, and up to when it has been told.
  `
  CREATE TABLE push_subscriptions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    interval_minutes INTEGER NOT NULL CHECK (interval_minutes BETWEEN 5 AND 1440),
    created_at INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
  `,
  // 28: campaign fingerprints (learning/): one row per reporter's word on a fingerprint, spam or
  // ham, with that reporter's trust. `version` grows with every insert and revocation, so the SMTP
  // processes load only what changed. Organisations may opt out of learning ham from their
  // outbound mail, and of sharing what their users taught with the MSP's other customers.
  `
  CREATE TABLE fuzzy_hashes (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'url', 'attachment')),
    key TEXT NOT NULL,
    label TEXT NOT NULL CHECK (label IN ('spam', 'ham')),
    reporter TEXT NOT NULL,
    trust INTEGER NOT NULL CHECK (trust > 0),
    origin TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local', 'fleet')),
    org_id INTEGER REFERENCES organisations(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    version INTEGER NOT NULL,
    UNIQUE (kind, key, label, reporter)
  ) STRICT;
  CREATE INDEX fuzzy_hashes_version ON fuzzy_hashes(version);
  CREATE INDEX fuzzy_hashes_reporter ON fuzzy_hashes(reporter);
  CREATE INDEX fuzzy_hashes_created ON fuzzy_hashes(created_at) WHERE revoked_at IS NULL;
  ALTER TABLE organisations ADD COLUMN learn_outbound INTEGER NOT NULL DEFAULT 1 CHECK (learn_outbound IN (0, 1));
  ALTER TABLE organisations ADD COLUMN share_learning INTEGER NOT NULL DEFAULT 1 CHECK (share_learning IN (0, 1));
  `,
  // 29: the fleet console's side of learning (fleet/learning.ts): each host's word on each
  // fingerprint it shared, relayed to the MSP's other hosts by version; and how many words a
  // host had refused for flooding, shown to the MSP.
  `
  CREATE TABLE fleet_fingerprints (
    id INTEGER PRIMARY KEY,
    msp_id INTEGER NOT NULL REFERENCES msps(id) ON DELETE CASCADE,
    host_id INTEGER NOT NULL REFERENCES fleet_hosts(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'url', 'attachment')),
    key TEXT NOT NULL,
    label TEXT NOT NULL CHECK (label IN ('spam', 'ham')),
    -- the host's reporters on it, as {reporter hash: trust}; the relayed trust is derived from it
    reporters TEXT NOT NULL,
    trust INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    withdrawn_by TEXT,
    version INTEGER NOT NULL,
    UNIQUE (host_id, kind, key, label)
  ) STRICT;
  CREATE INDEX fleet_fingerprints_version ON fleet_fingerprints(msp_id, version);
  CREATE INDEX fleet_fingerprints_host_time ON fleet_fingerprints(host_id, created_at);
  ALTER TABLE fleet_hosts ADD COLUMN learning_refused INTEGER NOT NULL DEFAULT 0;
  `,
  // 30: recipient verification by callout (smtp/callout.ts): per domain, a recipient Moat does
  // not know is asked of the customer's own server before RCPT is answered.
  `
  ALTER TABLE domains ADD COLUMN verify_recipients INTEGER NOT NULL DEFAULT 0 CHECK (verify_recipients IN (0, 1));
  `,
  // 31: users from the directory (directory/sync.ts): each organisation's LDAP / Active
  // Directory source, and which users and aliases the sync made (and so may remove again;
  // those made by hand it never touches).
  `
  CREATE TABLE directory_sources (
    org_id INTEGER PRIMARY KEY REFERENCES organisations(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    bind_dn TEXT NOT NULL,
    bind_password TEXT NOT NULL,
    base_dn TEXT NOT NULL,
    filter TEXT NOT NULL,
    every_minutes INTEGER NOT NULL CHECK (every_minutes BETWEEN 5 AND 10080),
    last_attempt_at INTEGER,
    last_ok_at INTEGER,
    last_result TEXT,
    last_error TEXT
  ) STRICT;
  ALTER TABLE users ADD COLUMN from_directory INTEGER NOT NULL DEFAULT 0 CHECK (from_directory IN (0, 1));
  ALTER TABLE aliases ADD COLUMN from_directory INTEGER NOT NULL DEFAULT 0 CHECK (from_directory IN (0, 1));
  `,
  // 32: the tracking centre (tracking/): every refusal of the SMTP dialogue, one row a
  // recipient (or one without a recipient when refused before RCPT), kept N days; accepted
  // mail is already in messages, deliveries and delivery_attempts. Searches go by time first,
  // on the (org_id, received_at) index messages has: no index is added to the mail path.
  `
  CREATE TABLE smtp_refusals (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    org_id INTEGER REFERENCES organisations(id) ON DELETE CASCADE,
    session TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    helo TEXT,
    mail_from TEXT,
    rcpt TEXT,
    stage TEXT NOT NULL,
    code INTEGER NOT NULL,
    reason TEXT NOT NULL,
    plugin TEXT NOT NULL
  ) STRICT;
  CREATE INDEX smtp_refusals_at ON smtp_refusals(at);
  CREATE INDEX smtp_refusals_org_at ON smtp_refusals(org_id, at);
  ALTER TABLE delivery_attempts ADD COLUMN message_id INTEGER;
  CREATE INDEX delivery_attempts_message ON delivery_attempts(message_id) WHERE message_id IS NOT NULL;
  `,
  // 33: appliance reputation (fleet/reputation.ts): whether another appliance of the MSP said
  // the same of a fingerprint is a lookup by key across hosts.
  `
  CREATE INDEX fleet_fingerprints_key ON fleet_fingerprints(msp_id, kind, key);
  `,
]
