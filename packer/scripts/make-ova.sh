#!/usr/bin/env bash
# Packs the appliance disk as an OVA for VMware (ESXi, Workstation, Fusion) and VirtualBox:
# an OVF 1.0 descriptor (2 vCPUs, 4 GiB of memory — clamd's signatures alone take over 1 GiB —,
# one disk, one E1000 NIC on the "VM Network"), a SHA256 manifest, and the disk as a
# streamOptimized VMDK, in the tar order the OVF specification asks for (descriptor first).
#
# usage: packer/scripts/make-ova.sh DISK.qcow2 OUT.ova [NAME]
set -euo pipefail

disk=$1
ova=$2
name=${3:-moat}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

vmdk="$name-disk1.vmdk"
qemu-img convert -O vmdk -o subformat=streamOptimized "$disk" "$work/$vmdk"
capacity=$(qemu-img info --output=json "$disk" | sed -n 's/.*"virtual-size": *\([0-9]*\).*/\1/p' | head -n 1)
size=$(stat -c %s "$work/$vmdk")
[ -n "$capacity" ] || { echo "make-ova: cannot read the virtual size of $disk" >&2; exit 1; }

cat > "$work/$name.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:id="file1" ovf:href="$vmdk" ovf:size="$size"/>
  </References>
  <DiskSection>
    <Info>The appliance's disk</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="$capacity" ovf:capacityAllocationUnits="byte"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The network the appliance receives and sends mail on</Info>
    <Network ovf:name="VM Network"><Description>The appliance's network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="$name">
    <Info>Moat e-mail security appliance</Info>
    <Name>$name</Name>
    <OperatingSystemSection ovf:id="96">
      <Info>Debian 12 (64-bit)</Info>
      <Description>Debian GNU/Linux 12 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>2 vCPUs, 4 GiB of memory, one disk, one network card</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>$name</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPUs</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory size</rasd:Description>
        <rasd:ElementName>4096 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>4096</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>E1000 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
OVF

(cd "$work" && sha256sum "$name.ovf" "$vmdk" | sed -E 's/^([0-9a-f]+)  (.*)$/SHA256(\2)= \1/' > "$name.mf")
# The descriptor first, then the manifest, then the disk: readers stream an OVA in order.
tar --format=ustar -cf "$ova.tmp" -C "$work" "$name.ovf" "$name.mf" "$vmdk"
mv "$ova.tmp" "$ova"
