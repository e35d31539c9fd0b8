/*
 * Where phishing sends its victim (filters/phishing-links.ts), table-driven on crafted mail:
 * symbols, never scores.
 */
import t from 'tap'
import { phishingLinkChecks } from '../../../appliance/engine/filters/phishing-links'
import { parseMessage } from '../../../appliance/engine/message'

const crlf = (s: string) => Buffer.from(s.replace(/\r?\n/g, '\r\n'))
const names = async (raw: string) => phishingLinkChecks(await parseMessage(crlf(raw))).map((s) => s.name).sort()
const mail = (from: string, body: string, extra = '') =>
  `From: ${from}\nTo: bob@example.org\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <1@x.test>\nSubject: Notice\n${extra}Content-Type: text/html; charset=utf-8\n\n${body}\n`
const link = (href: string) => `<a href="${href}">open</a>`

t.test('link hosts, table-driven', async (t) => {
  const cases: [string, string, string[]][] = [
    ['a link to the sender itself fires nothing', mail('Shop <news@shop.example>', link('https://www.shop.example/deal')), []],
    ['a public shortener', mail('Shop <news@shop.example>', link('https://bit.ly/3w6uTZ4')), ['URL_SHORTENER']],
    ["the sender's own shortener is not counted", mail('X <info@t.co>', link('https://t.co/abc')), []],
    ['a Firebase page', mail('IT <it@corp.example>', link('https://login-portal-3f2a.web.app/')), ['URL_THROWAWAY_HOSTING']],
    ['a Cloudflare Pages site', mail('IT <it@corp.example>', link('https://ynwvhg.transfer-btc.pages.dev/')), ['URL_THROWAWAY_HOSTING']],
    ['a Google Form', mail('A <a@corp.example>', link('https://docs.google.com/forms/d/e/1FAIpQLSf/viewform')), ['URL_THROWAWAY_HOSTING']],
    ['a shared Google document is not a form', mail('A <a@corp.example>', link('https://docs.google.com/document/d/1abc/edit')), []],
    ['an IPFS gateway', mail('A <a@corp.example>', link('https://ipfs.io/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG/index.html')), ['URL_IPFS']],
    ['an IPFS path on any host', mail('A <a@corp.example>', link('https://gw.example.net/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi')), ['URL_IPFS']],
    ['a percent-encoded host', mail('A <a@corp.example>', link('http://w%77%77%2eexample.net/x')), ['URL_BAD_HOST']],
    ['a trailing comma after a text URL is not a bad host', 'From: A <a@corp.example>\nSubject: x\n\nsee http://www.example.net, thanks\n', []],
  ]
  for (const [what, raw, want] of cases) t.same(await names(raw), want, what)
})

t.test('senders and attachments, table-driven', async (t) => {
  const attach = (name: string, type: string, body: string) =>
    `From: Billing <billing@corp.example>\nSubject: Invoice\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nSee attached.\n--b\nContent-Type: ${type}; name="${name}"\nContent-Disposition: attachment; filename="${name}"\n\n${body}\n--b--\n`
  const cases: [string, string, string[]][] = [
    ['a From domain that cannot exist', mail('Receita Federal <avisos@824564rctaregular>', '<p>x</p>'), ['FROM_DOMAIN_INVALID']],
    ['a machine-made sender domain', mail('Home Warranty <fjbazw@1ysjnkmxdj6syw2nxw4n.com>', '<p>x</p>'), ['FROM_RANDOM_DOMAIN']],
    ['a company name with a year in it is not machine-made', mail('Tours <adrian@2020tourism.com>', '<p>x</p>'), []],
    ['a Microsoft 365 trial tenant', mail('Airdrop <airdrop@oflrxiet.onmicrosoft.com>', '<p>x</p>'), ['FROM_THROWAWAY_TENANT']],
    ['an address of another domain shown as the name', mail('"service@paypal.com" <x@evil.example>', '<p>x</p>'), ['FROM_NAME_HAS_ADDRESS']],
    ["the sender's own address as its name is fine", mail('"alice@corp.example" <alice@corp.example>', '<p>x</p>'), []],
    ['an HTML page attached', attach('Invoice.html', 'text/html', '<html><body><h1>Invoice</h1></body></html>'), ['PHISH_HTML_ATTACHMENT']],
    ['an HTML page with a form attached', attach('Remittance.htm', 'text/html', '<form action="https://x.example/p"><input type="password"></form>'), ['PHISH_HTML_ATTACHMENT_FORM']],
    ['an SVG that redirects', attach('scan.svg', 'image/svg+xml', '<svg><script>window.location="https://x.example"</script></svg>'), ['PHISH_HTML_ATTACHMENT_FORM']],
    ['a PDF is not an HTML page', attach('Invoice.pdf', 'application/pdf', '%PDF-1.4'), []],
    ['a picture named as a PDF', attach('TGE-5986-5932-5487.pdf', 'image/jpeg', 'x'), ['PHISH_ATTACHMENT_DISGUISED']],
    ['a PDF named as an invitation', attach('G0.ics', 'application/pdf', '%PDF-1.4'), ['PHISH_ATTACHMENT_DISGUISED']],
    ['a generic type says nothing', attach('Invoice.pdf', 'application/octet-stream', '%PDF-1.4'), []],
    ['a JPEG named .png is still a picture', attach('photo.png', 'image/jpeg', 'x'), []],
  ]
  for (const [what, raw, want] of cases) t.same(await names(raw), want, what)
})
