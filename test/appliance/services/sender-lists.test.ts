import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { normalisePattern, SenderLists } from '../../../appliance/services/sender-lists'
import { Tenants } from '../../../appliance/services/tenants'

t.test('patterns: an address, or a domain with its subdomains', async (t) => {
  t.equal(normalisePattern(' Bob@Example.NET '), 'bob@example.net')
  t.equal(normalisePattern('example.net'), '@example.net')
  t.equal(normalisePattern('@example.net'), '@example.net')
  t.throws(() => normalisePattern('bob'), /not an address/)
  t.throws(() => normalisePattern('@'), /not an address/)
})

t.test('matching: the user before the organisation, block before allow at one level', async (t) => {
  const db = openDatabase(':memory:')
  const tenants = new Tenants(db)
  const org = tenants.addOrg('acme')
  tenants.addDomain('example.com', { org: 'acme', deliverTo: 'mx.example.com' })
  const alice = tenants.addUser('alice@example.com')
  const bob = tenants.addUser('bob@example.com')
  const other = tenants.addOrg('globex')
  const lists = new SenderLists(db)
  lists.add(org.id, null, 'block', '@example.net')
  lists.add(org.id, alice.id, 'allow', 'news@mail.example.net')
  t.same(lists.match(org.id, alice.id, ['news@mail.example.net']), { kind: 'allow', pattern: 'news@mail.example.net', level: 'user' })
  t.same(lists.match(org.id, bob.id, ['news@mail.example.net']), { kind: 'block', pattern: '@example.net', level: 'organisation' }, 'a parent domain matches')
  t.equal(lists.match(org.id, bob.id, ['x@notexample.net']), null, 'not a suffix match on the name')
  t.equal(lists.match(other.id, null, ['news@mail.example.net']), null, "another organisation's list does not apply")
  lists.add(org.id, alice.id, 'block', '@mail.example.net')
  t.equal(lists.match(org.id, alice.id, ['news@mail.example.net'])!.kind, 'block', 'block wins at the same level')
  t.same(lists.match(org.id, alice.id, ['', 'someone@elsewhere.test']), null)
  const e = lists.add(org.id, null, 'block', '@example.net')
  t.equal(lists.list().filter((x) => x.pattern === '@example.net').length, 1, 'adding twice keeps one entry')
  lists.remove(e.id)
  t.throws(() => lists.remove(e.id), /no list entry/)
})
