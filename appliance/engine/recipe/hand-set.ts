/*
 * Weights set by hand for rules the training mail shows too rarely to fit (fewer than
 * MIN_EVIDENCE messages): mostly phishing rules, since the only phishing the shipped model
 * may learn from is foff-milter's, and phishing_pot (the test of phishing never seen) must
 * not set them. Chosen as SpamAssassin chooses its rule scores by hand: by what the rule
 * proves on its own. Nothing here reaches the spam threshold (5) alone; a phish must also
 * look like spam to the classifier or trip a second rule. Where the training mail does show
 * a rule often enough, the fitted weight replaces this one (the table records which).
 */
export const HAND_SET: Readonly<Record<string, number>> = {
  // Asks for a password in the message itself: almost proof.
  PHISH_PASSWORD_FORM: 4,
  // An attached page with a form or a redirecting script: a phish that escapes link scanners.
  PHISH_HTML_ATTACHMENT_FORM: 4,
  PHISH_HTML_ATTACHMENT: 2,
  // A file whose name and declared type disagree (a picture named .pdf): made to pass a
  // scanner that trusts the type while the reader trusts the name.
  PHISH_ATTACHMENT_DISGUISED: 3,
  // A web link as a QR code in an image ("quishing"): hidden from every text filter, and
  // rare in the mail people want (no message of the training mail has one).
  QR_CODE_URL: 2,
  // Asks for a wallet's recovery phrase or a private key.
  PHISH_SEED_PHRASE: 3,
  // A domain made to look like a brand's, or the brand's name worn by a stranger.
  PHISH_LOOKALIKE_FROM: 3,
  PHISH_LOOKALIKE_URL: 2,
  PHISH_BRAND_DISPLAY_NAME: 2.5,
  PHISH_BRAND_ACCOUNT: 2.5,
  PHISH_PUNYCODE_DOMAIN: 1.5,
  // Claims to have hacked the reader and wants bitcoin; a fake charge with a number to call.
  PHISH_EXTORTION: 3,
  PHISH_CALLBACK: 1.5,
  // A brand's bill sent by a stranger with a number to call: what a brand never does.
  PHISH_BRAND_CALLBACK: 3,
  SPAM_ADULT_DATING: 2,
  SPAM_GAMBLING: 1.5,
  // Crypto bait, a reader greeted by address, filler hidden out of sight.
  PHISH_CRYPTO_LURE: 1.5,
  PHISH_ADDRESS_GREETING: 2,
  HTML_HIDDEN_TEXT: 2,
  // Account threats happen in real notices too; with a brand worn by a stranger, they weigh more.
  PHISH_ACCOUNT_THREAT: 1,
  // Written to dodge word filters.
  FROM_NAME_OBFUSCATED: 3,
  SUBJECT_OBFUSCATED: 2,
  FROM_NAME_HAS_ADDRESS: 2,
  // A From no mail program writes (an unquoted comma before the address): built so that
  // filters read no sender while the reader sees a brand. No ham of the corpus has one.
  FROM_MALFORMED: 3,
  // Senders no business uses.
  FROM_DOMAIN_INVALID: 2,
  FROM_THROWAWAY_TENANT: 2,
  FROM_RANDOM_DOMAIN: 1.5,
  // Where the victim is sent: content-addressed storage, free hosting, hidden targets, hosts that are not host names.
  URL_IPFS: 3,
  URL_BAD_HOST: 2,
  URL_THROWAWAY_HOSTING: 1.5,
  URL_SHORTENER: 1,
  HTML_FORM: 1.5,
  MISSING_FROM: 1.5,
  // Raw UTF-8 in header fields is how much of the world writes mail now (RFC 6532); the
  // fit gave it points because 2002 spam had it more than 2002 ham, which flags ham today.
  HEADER_8BIT: 0,
  MISSING_MESSAGE_ID: 0.5,
}
