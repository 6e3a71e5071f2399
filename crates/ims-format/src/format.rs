//! The formats the engine recognises.

use serde::Serialize;

/// A disk image format, as detected from content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// No recognised structure: a plain disk.
    Raw,
    /// QEMU copy-on-write v2/v3.
    Qcow2,
    /// QEMU copy-on-write v1: recognised and refused.
    Qcow,
    /// QEMU enhanced disk: recognised and refused.
    Qed,
    /// Microsoft Virtual PC / Hyper-V VHD, fixed or dynamic.
    Vhd,
    /// Hyper-V VHDX.
    Vhdx,
    /// VMware VMDK (sparse, stream-optimised or a text descriptor).
    Vmdk,
    /// VirtualBox VDI.
    Vdi,
    /// ISO 9660 or UDF optical image.
    Iso,
    /// A GUID partition table on a raw disk.
    Gpt,
    /// An MBR partition table on a raw disk.
    Mbr,
    /// A LUKS v1 or v2 encrypted volume.
    Luks,
    /// Huawei ZVHD (zlib-compressed stream): recognised by signature only.
    Zvhd,
    /// Huawei ZVHD2 (zstd-compressed, indexed): recognised by signature only.
    Zvhd2,
}

impl Format {
    /// Every format, for iteration and help texts.
    pub const ALL: [Format; 14] = [
        Format::Raw,
        Format::Qcow2,
        Format::Qcow,
        Format::Qed,
        Format::Vhd,
        Format::Vhdx,
        Format::Vmdk,
        Format::Vdi,
        Format::Iso,
        Format::Gpt,
        Format::Mbr,
        Format::Luks,
        Format::Zvhd,
        Format::Zvhd2,
    ];

    /// The lower-case name, as used in `disk_format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
            Format::Qcow => "qcow",
            Format::Qed => "qed",
            Format::Vhd => "vhd",
            Format::Vhdx => "vhdx",
            Format::Vmdk => "vmdk",
            Format::Vdi => "vdi",
            Format::Iso => "iso",
            Format::Gpt => "gpt",
            Format::Mbr => "mbr",
            Format::Luks => "luks",
            Format::Zvhd => "zvhd",
            Format::Zvhd2 => "zvhd2",
        }
    }

    /// Parses a name; `vpc` (qemu's name for VHD) is accepted too.
    pub fn parse(name: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        if name == "vpc" {
            return Some(Format::Vhd);
        }
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The name `qemu-img` uses for this format (`-f`/`-O`), if it has a driver for it.
    /// ISO images and partitioned disks are plain `raw` to qemu.
    pub fn qemu_name(self) -> Option<&'static str> {
        match self {
            Format::Raw | Format::Iso | Format::Gpt | Format::Mbr => Some("raw"),
            Format::Vhd => Some("vpc"),
            Format::Qcow2 => Some("qcow2"),
            Format::Qcow => Some("qcow"),
            Format::Qed => Some("qed"),
            Format::Vhdx => Some("vhdx"),
            Format::Vmdk => Some("vmdk"),
            Format::Vdi => Some("vdi"),
            Format::Luks => Some("luks"),
            Format::Zvhd | Format::Zvhd2 => None,
        }
    }

    /// Partition tables describe the inside of a raw disk rather than a container.
    pub fn is_partition_table(self) -> bool {
        matches!(self, Format::Gpt | Format::Mbr)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
