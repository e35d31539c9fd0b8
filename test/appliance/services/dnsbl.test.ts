import t from 'tap'
import { isPrivate, registeredDomain, reverseName } from '../../../appliance/services/dnsbl'

t.test('query names and private ranges', async (t) => {
  t.equal(reverseName('192.0.2.99'), '99.2.0.192')
  t.equal(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2')
  t.equal(reverseName('not an ip'), null)
  for (const ip of ['127.0.0.2', '10.1.2.3', '172.16.0.1', '192.168.1.1', '::1', 'fd00::1', '::ffff:10.0.0.1']) t.ok(isPrivate(ip), ip)
  for (const ip of ['192.0.2.1', '8.8.8.8', '172.32.0.1', '2001:db8::1']) t.notOk(isPrivate(ip), ip)
})

t.test('the domain a domain list is asked about', async (t) => {
  const cases: [string, string | null][] = [
    ['example.com', 'example.com'],
    ['Login.Secure.Example.COM.', 'example.com'],
    ['www.bbc.co.uk', 'bbc.co.uk'],
    ['shop.example.com.au', 'example.com.au'],
    ['a.b.example.de', 'example.de'],
    ['mail.spammer.ru.com', 'spammer.ru.com'],
    ['192.0.2.1', null],
    ['[2001:db8::1]', null],
    ['localhost', null],
    ['bad_name.example.com', null],
  ]
  for (const [host, want] of cases) t.equal(registeredDomain(host), want, `${host}: got ${registeredDomain(host)}, want ${want}`)
})
