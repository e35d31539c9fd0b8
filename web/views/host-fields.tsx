/* The host name and network fields, shared by the setup wizard and the Status page. */
export function HostFields(props: { values: Record<string, string> }) {
  const v = props.values
  const mode = v.net_mode === 'static' ? 'static' : 'dhcp'
  return (
    <fieldset class="host-settings">
      <legend>Appliance name and network</legend>
      <label>Host name (as the appliance greets other mail servers) <input name="hostname" required placeholder="mx1.example.com" value={v.hostname ?? ''} /></label>
      <label class="check"><input type="radio" name="net_mode" value="dhcp" checked={mode === 'dhcp'} /> Address from DHCP</label>
      <label class="check"><input type="radio" name="net_mode" value="static" checked={mode === 'static'} /> Fixed address</label>
      <label>Address with prefix length <input name="address" placeholder="192.0.2.10/24" value={v.address ?? ''} /></label>
      <label>Gateway <input name="gateway" placeholder="192.0.2.1" value={v.gateway ?? ''} /></label>
      <label>DNS servers <input name="dns" placeholder="192.0.2.53 192.0.2.54" value={v.dns ?? ''} /></label>
    </fieldset>
  )
}
