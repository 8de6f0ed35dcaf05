//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// iovmm: a small KVM VMM with faithful IOMMU models.
#[derive(Debug, Parser)]
#[command(name = "iovmm", version, about)]
pub struct Cli {
    /// Log level for VMM messages on stderr: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: log::LevelFilter,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a Linux bzImage. Exit status: the guest's (exit device, port 0xf4); 124 timeout;
    /// 125 guest reset or kernel panic; 1 VMM error.
    Run(RunArgs),
    /// Print the machine description (e820, ACPI tables, PCI functions) as JSON.
    Describe(MachineArgs),
    /// Write every firmware table as raw files (DIR/<SIGNATURE>.dat) for iasl/dtc.
    Tables(TablesArgs),
    /// Look into a running VM's IOMMU through its monitor socket (or, for `ranges`, a configuration).
    Debug(DebugArgs),
    /// Replay a bring-up script (JSON: memory contents, register writes/reads, DMA requests with expected
    /// translations or faults) against the IOMMU model it names, with no guest. Exit status 0 when every
    /// step matched, 1 at the first mismatch (printed with the walk that produced it).
    Bringup(BringupArgs),
}

#[derive(Debug, Args)]
pub struct BringupArgs {
    /// The script (see devices/iommu/bringup/ for examples).
    pub script: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses a number in decimal or 0x-prefixed hex.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?} is not a number: {e}"))
}

#[derive(Debug, Args)]
pub struct DebugArgs {
    #[command(subcommand)]
    pub command: DebugCommand,
}

/// Where `iovmm debug` gets its answers.
#[derive(Debug, Clone, Args)]
pub struct MonitorArgs {
    /// The monitor socket of a running `iovmm run --monitor PATH`.
    #[arg(long)]
    pub monitor: PathBuf,
    /// Print the raw JSON result instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Permitted IOVA ranges: of a configuration (`--iommu vtd,aw=45`, `--iommu tce`, no guest) or of a running VM.
    Ranges {
        /// An IOMMU configuration to evaluate without a guest.
        #[arg(long, conflicts_with = "monitor")]
        iommu: Option<crate::iommus::IommuConfig>,
        /// The monitor socket of a running VM.
        #[arg(long, required_unless_present = "iommu")]
        monitor: Option<PathBuf>,
        /// Requester (PCI BDF).
        #[arg(long, default_value = "00:03.0")]
        source: String,
        #[arg(long)]
        json: bool,
    },
    /// Walk the guest's live tables for one IOVA, step by step, with no side effects.
    Translate {
        #[command(flatten)]
        monitor: MonitorArgs,
        #[arg(long, default_value = "00:03.0")]
        source: String,
        #[arg(long)]
        pasid: Option<u32>,
        #[arg(long, value_parser = parse_u64)]
        iova: u64,
        /// Check write permission instead of read.
        #[arg(long)]
        write: bool,
    },
    /// Every live mapping of a source; `--dot` prints a Graphviz picture of the table tree.
    Dump {
        #[command(flatten)]
        monitor: MonitorArgs,
        #[arg(long, default_value = "00:03.0")]
        source: String,
        #[arg(long)]
        pasid: Option<u32>,
        #[arg(long)]
        dot: bool,
    },
    /// IOTLB hits/misses/evictions, walks, faults by reason, invalidations by type.
    Stats {
        #[command(flatten)]
        monitor: MonitorArgs,
    },
    /// Make the next COUNT translations of a source fail with REASON, and/or hold invalidation completion.
    Inject {
        #[command(flatten)]
        monitor: MonitorArgs,
        #[arg(long, default_value = "00:03.0")]
        source: String,
        /// Architected fault reason (e.g. 0x79); with --count translations to fail.
        #[arg(long, value_parser = parse_u64, required_unless_present = "hold_invalidations_ms")]
        reason: Option<u64>,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Hold invalidation-wait completion for this many milliseconds.
        #[arg(long)]
        hold_invalidations_ms: Option<u64>,
    },
}

/// Options that shape the virtual machine (shared by run, describe and tables).
#[derive(Debug, Clone, Args)]
pub struct MachineArgs {
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    pub memory: u64,
    /// Number of vCPUs (1..=8).
    #[arg(long, default_value_t = 1)]
    pub cpus: u8,
    /// IOMMU in front of the PCI devices: vtd[,aw=39..57][,sm=on|off][,fl=on|off][,nest=on|off]
    /// [,fl5=on|off][,fl1g=on|off][,ir=on|off][,eim=on|off][,nfr=N][,caching=on|off][,rmrr=BASE-END@BDF];
    /// or smmuv3[,oas=32..52][,sidbits=N][,ssidbits=N][,stages=s1|s2|nested][,httu=0|1|2][,ril=on|off]
    /// [,caching=on|off][,strtab=linear|2lvl][,gbpa=bypass|abort];
    /// or tce[,eeh=freeze|report][,caching=on|off][,pageshifts=12:16:21:24:28:30][,page64=SHIFT][,pool=BASE+SIZE].
    #[arg(long)]
    pub iommu: Option<crate::iommus::IommuConfig>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Linux bzImage (64-bit boot protocol, 2.12 or later).
    #[arg(long)]
    pub kernel: PathBuf,
    /// Initial ramdisk (cpio, optionally compressed, as the kernel supports).
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, default_value = "console=ttyS0 reboot=k panic=-1")]
    pub cmdline: String,
    /// End the run after this many seconds (exit status 124).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Serve the JSON-lines monitor on this Unix socket (see `iovmm debug`).
    #[arg(long)]
    pub monitor: Option<PathBuf>,
    #[command(flatten)]
    pub machine: MachineArgs,
}

#[derive(Debug, Args)]
pub struct TablesArgs {
    /// Directory to write the tables into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub machine: MachineArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_run() {
        let cli = Cli::try_parse_from([
            "iovmm",
            "run",
            "--kernel",
            "bz",
            "--initrd",
            "rd",
            "--memory",
            "256",
            "--cpus",
            "2",
            "--timeout",
            "5",
        ])
        .unwrap();
        match cli.command {
            Command::Run(r) => {
                assert_eq!(r.kernel, PathBuf::from("bz"));
                assert_eq!(
                    (r.machine.memory, r.machine.cpus, r.timeout),
                    (256, 2, Some(5.0))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_unknown_options() {
        assert!(Cli::try_parse_from(["iovmm", "run", "--kernel", "bz", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["iovmm", "run"]).is_err());
        assert!(Cli::try_parse_from(["iovmm", "describe", "--cpus", "300"]).is_err());
    }
}
