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
    /// IOMMU in front of the PCI devices:
    /// vtd[,aw=39|48|57][,sm=on|off][,nfr=N][,caching=on|off][,rmrr=BASE-END@BDF].
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
