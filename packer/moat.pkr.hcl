# The Moat appliance image. Packer's QEMU builder boots the base disk made by
# scripts/build-base.sh (no ISO, no download) and provisions the staged release over SSH.
# Debian 12's packer (1.6.6) has the qemu builder built in: no required_plugins block.
# Run through packer/build.sh (npm run image), which makes the inputs and the other formats.

variable "base_image" {
  type        = string
  description = "qcow2 from scripts/build-base.sh"
}

variable "release" {
  type        = string
  description = "tarball from scripts/stage.sh"
}

variable "update_test" {
  type        = string
  description = "signed release file the provisioning updates to and back (scripts/stage.sh)"
}

variable "ssh_key" {
  type        = string
  description = "private key matching the base image's build key"
}

variable "output_dir" {
  type    = string
  default = "output"
}

variable "accelerator" {
  type    = string
  default = "tcg"
}

variable "serial_log" {
  type    = string
  default = "output-build-serial.log"
}

source "qemu" "moat" {
  disk_image       = true
  iso_url          = var.base_image
  iso_checksum     = "none"
  use_backing_file = false
  format           = "qcow2"
  disk_size        = "6144M"
  disk_compression = true
  accelerator      = var.accelerator
  headless         = true
  disable_vnc      = true
  boot_wait        = "1s"
  memory           = 2048
  cpus             = 2
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  output_directory = var.output_dir
  vm_name          = "moat.qcow2"
  communicator     = "ssh"
  ssh_username     = "root"
  ssh_private_key_file = var.ssh_key
  ssh_timeout      = "40m"
  shutdown_command = "systemctl poweroff"
  shutdown_timeout = "10m"
  # The SSH forward on loopback only, and the guest kept off every network (restrict=on).
  qemuargs = [
    ["-netdev", "user,id=user.0,restrict=on,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ["-device", "virtio-net,netdev=user.0"],
    ["-serial", "file:${var.serial_log}"],
    ["-vnc", "none"],
  ]
}

build {
  sources = ["source.qemu.moat"]

  provisioner "file" {
    source      = var.release
    destination = "/tmp/moat.tar.gz"
  }

  provisioner "file" {
    source      = "files"
    destination = "/tmp"
  }

  provisioner "file" {
    source      = var.update_test
    destination = "/tmp/moat-imagetest.moat"
  }

  provisioner "shell" {
    script = "scripts/provision.sh"
  }
}
