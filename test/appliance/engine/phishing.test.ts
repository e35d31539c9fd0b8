/*
 * Phishing signals on crafted mail and on the phishing_pot part of the corpus. Symbols, never
 * scores: retuning weights must not break these.
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { lookalikeOf, obfuscation, phishingChecks } from '../../../appliance/engine/filters/phishing'
import { parseMessage } from '../../../appliance/engine/message'
import { corpusDir, readManifest } from '../../../appliance/engine/training'

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'))
const names = async (raw: string) => phishingChecks(await parseMessage(crlf(raw))).map((s) => s.name).sort()
const head = (from: string) => `From: ${from}\nTo: bob@example.org\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <1@x.test>\nSubject: Your account\n`

t.test('lookalike domains: digits for letters, one letter off, the brand wrapped in words; never the brand itself', async (t) => {
  for (const d of ['paypa1.com', 'paypai.com', 'rnicrosoft.com', 'micros0ft.net', 'secure-paypal-login.com', 'paypal-verify.net', 'arnazon.de', 'netfiix.com', 'docusiqn.com'])
    t.ok(lookalikeOf(d), `${d} imitates a brand`)
  for (const d of ['paypal.com', 'microsoft.com', 'amazon.de', 'netflix.com', 'example.com', 'kernel.org', 'apples.org', 'ups.com', 'dhl.de', 'chasefield.org'])
    t.equal(lookalikeOf(d), null, `${d} is not a lookalike`)
})

t.test('obfuscation: what hides inside a word, and what is only another language', async (t) => {
  t.match(obfuscation('P\u0336e\u0336n\u0336d\u0336i\u0336n\u0336g\u0336'), /invisible/, 'a strike-through overlay on every letter')
  t.match(obfuscation('I\u{E0139}RS Tax notice'), /invisible/, 'a tag character inside a word')
  t.match(obfuscation('S\uFEFFe\uFEFFr\uFEFFvice'), /invisible/, 'byte-order marks between the letters')
  t.match(obfuscation('Recent L\u0435dg\u0435r breach'), /two alphabets/, 'Cyrillic е in a Latin word')
  t.equal(obfuscation('\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439\u0442\u0435, Ivan'), null, 'Russian and English words side by side')
  t.equal(obfuscation('Caf\u00e9 cr\u00e8me \u2013 50 %'), null, 'accents and typography')
  t.equal(obfuscation('\u2764\uFE0F sale'), null, 'an emoji with its variation selector')
  t.match(obfuscation('A\u073Fc\u073Fc\u073Fo\u073Fu\u073Fn\u073Ft L\u073Focked'), /marks stacked/, 'a Syriac mark on every letter')
  t.equal(obfuscation('Cafe\u0301 cre\u0300me'), null, 'decomposed accents compose into letters')
  t.match(obfuscation("We've b\u1963o\u1974k\u1971d your account"), /two alphabets/, 'Tai Le letters posing as Latin ones')
  t.equal(obfuscation('iPhone\u7528\u30B1\u30FC\u30B9'), null, 'Japanese writes Latin and kana in one word')
  t.match(obfuscation('\u00DDour w\u00E1llet re-v\u00E1lidation'), /accents sprinkled/, 'accents on English bait words')
  t.equal(obfuscation('Voc\u00EA recebeu um b\u00F4nus'), null, 'Portuguese accents on Portuguese words')
  t.equal(obfuscation('R\u00E9sum\u00E9 for your order'), null, 'one accented word that is no bait')
})

t.test('phishing symbols, table-driven', async (t) => {
  const html = (body: string) => `Content-Type: text/html; charset=utf-8\n\n${body}\n`
  const cases: [string, string, string[]][] = [
    ['the brand from its own domain fires nothing', `${head('PayPal <service@paypal.com>')}\nYour receipt.\n`, []],
    ['a brand name from someone else', `${head('PayPal Security <alert@account-notice.test>')}\nVerify now.\n`, ['PHISH_BRAND_DISPLAY_NAME']],
    ['a lookalike sender domain', `${head('Service <service@paypa1.com>')}\nVerify now.\n`, ['PHISH_LOOKALIKE_FROM']],
    ['a password form in the mail', `${head('IT <it@example.com>')}${html('<form action="https://collect.test/p"><input name="u"><input type="password" name="p"></form>')}`, ['PHISH_PASSWORD_FORM']],
    ['a form without a password', `${head('Shop <news@shop.test>')}${html('<form action="https://shop.test/survey"><input name="rating"></form>')}`, ['HTML_FORM']],
    ['links to a lookalike and to punycode', `${head('Bank <info@bank.test>')}${html('<a href="https://secure-paypal-login.com/x">log in</a> <a href="https://xn--pypal-4ve.com/">here</a>')}`, ['PHISH_LOOKALIKE_URL', 'PHISH_PUNYCODE_DOMAIN']],
    ['a zero-width space inside a word of the subject', `${head('Billing <billing@example.com>')}`.replace('Your account', 'Your Pay\u200Bpal account') + '\nHello.\n', ['SUBJECT_OBFUSCATED']],
    ['Cyrillic letters among Latin ones in the display name, read as the brand they spell', `${head('L\u0435dg\u0435r Support <device@example.net>')}\nScan your device.\n`, ['FROM_NAME_OBFUSCATED', 'PHISH_BRAND_DISPLAY_NAME']],
    ['a brand spelt with spaces or a capital I for an l', `${head('C o i n b a s e <noreply@firesonic.test>')}\nYou sent 0.79 ETH.\n`, ['FROM_NAME_OBFUSCATED', 'PHISH_BRAND_DISPLAY_NAME']],
    ['a capital I for an l', `${head('Trust WaIIet <support@example.net>')}\nHello.\n`, ['FROM_NAME_OBFUSCATED', 'PHISH_BRAND_DISPLAY_NAME']],
    ['an account threat from a brand that is not the sender', `${head('Microsoft <alerts@example.net>')}`.replace('Your account', 'Unusual sign-in activity') + '\nWe detected something unusual.\n', ['PHISH_BRAND_ACCOUNT', 'PHISH_BRAND_DISPLAY_NAME']],
    ['an account threat with no brand', `${head('Helpdesk <it@example.net>')}\nYour mailbox is almost full. Verify your account today.\n`, ['PHISH_ACCOUNT_THREAT']],
    ['the same notice from the brand itself is only a threat', `${head('Microsoft <account-security-noreply@accountprotection.microsoft.com>')}`.replace('Your account', 'Unusual sign-in activity') + '\nWe detected something unusual.\n', ['PHISH_ACCOUNT_THREAT']],
    ['asks for the recovery phrase', `${head('Wallet <w@example.net>')}\nEnter your 12-word recovery phrase to keep access.\n`, ['PHISH_SEED_PHRASE']],
    ['crypto bait', `${head('Rewards <r@example.net>')}\nThe airdrop is live: claim your tokens now.\n`, ['PHISH_CRYPTO_LURE']],
    ['greets the reader by address', `${head('Support <s@example.net>')}\nDear bob@example.org,\nyour invoice is ready.\n`, ['PHISH_ADDRESS_GREETING']],
    ['filler moved out of sight', `${head('News <n@example.net>')}${html('<div style="margin-top: 470500px">filler words</div><p>Offer</p>')}`, ['HTML_HIDDEN_TEXT']],
    ['a preheader hidden the newsletter way is not', `${head('News <n@example.net>')}${html('<div style="display:none;max-height:0;font-size:0">Preview</div><p>Offer</p>')}`, []],
    ['extortion for bitcoin', `${head('Enzo <noreply@efood.example>')}\nYour PC has been hacked. I recorded you. Send $900 in Bitcoin to this wallet address.\n`, ['PHISH_EXTORTION']],
    ['malware talk without a ransom is not extortion', `${head('Jane Doe <jane@kernel.org>')}\nThe trojan sample is in the sandbox; the report is attached.\n`, []],
    ['gambling bait', `${head('Rewards <r@example.net>')}\nWELCOME BONUS up to $750, 100 free spins, no deposit required!\n`, ['SPAM_GAMBLING']],
    ['a fake charge with a toll-free number', `${head('Billing Team <b@example.net>')}\nYour card has been charged $399.99 for Norton 360. If you did not authorize this, call +1 (855) 389-4043.\n`, ['PHISH_CALLBACK']],
    ['a brand\'s bill from a stranger with a number to call', `${head('E-Receipt Bill Team <geds@nt.mapelmoulds.test>')}\nYour Norton Order Confirmation: your plan renews on May 14. Questions? Call us at +1 (805) 248 4054.\n`, ['PHISH_BRAND_CALLBACK']],
    ['the brand\'s own bill with its number is not', `${head('PayPal <service@paypal.com>')}\nYour receipt for your subscription payment of $9.99. Questions? Call us at 1 (402) 935-2050.\n`, []],
    ['a shop\'s invoice that names a brand and gives its own number is not', `${head('G&I Roofing <invoices@gi-roofing.test>')}\nInvoice 1542A: pay with Apple Pay or card. Questions: call 425 280 6287.\n`, []],
    ['sex-dating bait', `${head('"Sex Dating" <wuet@tggrelo.test>')}`.replace('Your account', 'I am 22 years old, looking for a lover.') + '\nWrite to me.\n', ['SPAM_ADULT_DATING']],
    ['hooking up a board in a patch is not', `${head('Jane Doe <jane@kernel.org>')}`.replace('Your account', '[PATCH 17/18] Hook up Raspberry Pi 4 support') + '\nHook up the new board.\n', []],
    ['token presales and staking rewards', `${head('Team Ripple <x@kanyigo.test>')}\nYour XRP staking rewards are ready for claiming.\n`, ['PHISH_BRAND_DISPLAY_NAME', 'PHISH_CRYPTO_LURE']],
    ['a concert presale is not crypto bait', `${head('Tickets <news@tickets.example>')}\nThe RUSH artist presale starts tomorrow.\n`, []],
    ['a support number alone is no callback phish', `${head('Shop <news@shop.example>')}\nQuestions about your subscription? Call 1-800-555-0100.\n`, []],
    ['a private key in a technical thread is not bait', `${head('Jane Doe <jane@kernel.org>')}\nThe private key stays in the TPM; see the recovery flow.\n`, []],
    ['a display name padded with spaces to push the address out of view', `${head('Tim Hortons        #IY <promo@example.net>')}\nYou won.\n`, ['FROM_NAME_OBFUSCATED']],
    ['a display name with one double space is not padded', `${head('CNET Shopper Desktops  Notebooks <online@example.com>')}\nDeals.\n`, []],
    ['an emoji sequence, an accent and a Russian subject are not tricks', `${head('Shop <news@example.com>')}`.replace('Your account', 'Familie \u{1F468}\u200D\u{1F469}\u200D\u{1F467} Pokémon \u041F\u0440\u0438\u0432\u0435\u0442 world') + '\nHello.\n', []],
    ['an ordinary list message', `${head('Jane Doe <jane@kernel.org>')}\nPatch attached, see https://lore.kernel.org/x\n`, []],
  ]
  for (const [what, raw, want] of cases) t.same(await names(raw), want, what)
})

t.test('on real phishing: many phishing_pot messages raise a phishing signal, hardly any ham does', async (t) => {
  const dir = corpusDir()
  const rows = readManifest(dir)
  const pick = (source: string, n: number) => rows.filter((r) => r.source === source).slice(0, n)
  let phish = 0
  const phishRows = pick('phishing_pot', 200)
  for (const r of phishRows) if (phishingChecks(await parseMessage(fs.readFileSync(path.join(dir, r.path)))).length) phish++
  let ham = 0
  const hamRows = [...pick('linux-bluetooth.vger.kernel.org', 100), ...pick('jailhouse-dev.googlegroups.com', 100), ...pick('sa-easy_ham', 100), ...pick('foff-milter', 60)].filter((r) => r.label === 'ham')
  for (const r of hamRows) if (phishingChecks(await parseMessage(fs.readFileSync(path.join(dir, r.path)))).length) ham++
  t.comment(`phishing signals on ${phish}/${phishRows.length} phishing_pot messages, on ${ham}/${hamRows.length} list ham`)
  t.ok(phish >= phishRows.length * 0.1, 'a good part of real phishing shows a signal')
  t.ok(ham <= hamRows.length * 0.02, 'hardly any ham does')
})
