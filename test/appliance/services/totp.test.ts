import t from 'tap'
import { base32Decode, base32Encode, codeAt, newSecret, verify } from '../../../appliance/services/totp'

// RFC 6238 appendix B, SHA-1, secret "12345678901234567890" (8-digit codes; ours are the low 6).
const RFC_SECRET = base32Encode(Buffer.from('12345678901234567890'))

t.test('RFC 6238 test vectors', async (t) => {
  for (const [seconds, eight] of [[59, '94287082'], [1111111109, '07081804'], [1234567890, '89005924'], [2000000000, '69279037']] as const) {
    t.equal(codeAt(RFC_SECRET, Math.floor(seconds / 30)), eight.slice(2), `T=${seconds}`)
  }
})

t.test('base32 round trip', async (t) => {
  const s = newSecret()
  t.match(s, /^[A-Z2-7]{32}$/)
  t.equal(base32Encode(base32Decode(s)), s)
})

t.test('verify: one step of drift, each code once, nothing else', async (t) => {
  const now = 1_800_000_000_000
  const step = Math.floor(now / 30000)
  const s = newSecret()
  t.equal(verify(s, codeAt(s, step), now, null), step)
  t.equal(verify(s, codeAt(s, step - 1), now, null), step - 1, 'a code from 30 s ago')
  t.equal(verify(s, codeAt(s, step - 2), now, null), null, 'not from a minute ago')
  t.equal(verify(s, codeAt(s, step), now, step), null, 'not twice')
  t.equal(verify(s, '12345', now, null), null)
  t.equal(verify(s, 'abcdef', now, null), null)
})
