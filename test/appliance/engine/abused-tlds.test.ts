/*
 * The abused-TLD filter on crafted mail: which symbols fire, never scores.
 */
import t from 'tap'
import { abusedTldChecks } from '../../../appliance/engine/filters/abused-tlds'
import { parseMessage } from '../../../appliance/engine/message'

const mail = (from: string, body: string) =>
  Buffer.from(`From: ${from}\r\nTo: bob@example.org\r\nSubject: Offer\r\nMessage-ID: <1@x.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${body}\r\n`)
const names = async (from: string, body = '<p>Hello</p>') => abusedTldChecks(await parseMessage(mail(from, body))).map((s) => s.name).sort()

t.test('a sender or a foreign link on an abused TLD; never the sender linking to itself', async (t) => {
  t.same(await names('Deals <promo@mail.bestdeals.shop>'), ['FROM_ABUSED_TLD'], 'From on .shop')
  t.same(await names('Deals <promo@bestdeals.shop>', '<a href="https://www.bestdeals.shop/x">shop</a>'), ['FROM_ABUSED_TLD'], 'its own links add nothing')
  t.same(await names('News <news@example.com>', '<a href="https://track.win-now.top/c?id=1">claim</a>'), ['URL_ABUSED_TLD'], 'a link to .top')
  t.same(await names('News <news@shop.example.com>', '<a href="http://198.51.100.7/x">x</a> <a href="https://shop.example.com/">y</a>'), [], '.com with "shop" in a label, an IP link')
  t.same(await names('Jane <jane@kernel.org>', 'see https://lore.kernel.org/x'), [], 'ordinary mail')
  t.same(await names('Jane <jane@deals.SHOP.>', ''), ['FROM_ABUSED_TLD'], 'case and a trailing dot')
})
