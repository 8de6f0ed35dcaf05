//! `iovmm-runner`: runs iovmm guest test scenarios on the host.
//!
//! - `iovmm-runner list [--names] [--kernel-version 6.12|7.3]`
//! - `iovmm-runner run SCENARIO [--host-mode auto|native|tcg] [--images DIR] [--iovmm PATH] [--kernel PATH]
//!   [--initrd PATH] [--junit PATH] [--log PATH] [--timeout SECS]`
//! - `iovmm-runner peer SCENARIO [--peer qemu-kvm] [same options]`
//! - `iovmm-runner bench-boot [SCENARIO options] [--runs N] [--out FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use guest_tests::runner::bench::{self, BenchOptions};
use guest_tests::runner::hostmode::HostModeChoice;
use guest_tests::runner::kernels::KernelVersion;
use guest_tests::runner::paths::Overrides;
use guest_tests::runner::peer::{self, Peer, PeerOptions};
use guest_tests::runner::run::{self, RunOptions};
use guest_tests::runner::scenario::{self, SCENARIOS};

#[derive(Parser)]
#[command(name = "iovmm-runner", about = "Run iovmm guest test scenarios")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// Where to run the VMM: native /dev/kvm or the TCG test host (auto: native only on real VMX/SVM).
    #[arg(long, value_enum, default_value = "auto")]
    host_mode: HostModeChoice,
    /// Images directory [default: build/images at the repository root].
    #[arg(long)]
    images: Option<PathBuf>,
    /// The iovmm binary [default: target/x86_64-unknown-linux-gnu/release/iovmm].
    #[arg(long)]
    iovmm: Option<PathBuf>,
    /// Guest kernel version: our build of it (IMAGES/bzImage-V) or, for `distro-*` scenarios, Debian's binary
    /// kernel of it (IMAGES/distro-V/).
    #[arg(long, value_enum, default_value = "6.12")]
    kernel_version: KernelVersion,
    /// Guest kernel file, overriding the one --kernel-version picks.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Guest initramfs whose /init is iovmm-guest [default: IMAGES/guest-initramfs.cpio.gz].
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// QEMU binary for the TCG test host and the reference [default: qemu-system-x86_64].
    #[arg(long)]
    qemu: Option<PathBuf>,
    /// Overall wall-clock limit per boot, seconds [default: 300 native, 900 tcg].
    #[arg(long)]
    timeout: Option<u64>,
}

impl Common {
    fn overrides(&self) -> Overrides {
        Overrides {
            images: self.images.clone(),
            iovmm: self.iovmm.clone(),
            kernel: self.kernel.clone(),
            kernel_version: self.kernel_version,
            initrd: self.initrd.clone(),
            qemu: self.qemu.clone(),
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// List the scenarios (with --kernel-version: only those that exist for that kernel).
    List {
        /// Print only the names, one per line (for scripts).
        #[arg(long)]
        names: bool,
        /// Only the scenarios of this guest kernel version (some exist for one version only: the
        /// `upstream-vfio-*` scenarios run Linux 7.3's own VFIO selftests).
        #[arg(long, value_enum)]
        kernel_version: Option<KernelVersion>,
    },
    /// Boot one scenario's guest and report its tests.
    Run {
        scenario: String,
        #[command(flatten)]
        common: Common,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Full console log [default: build/logs/SCENARIO-MODE.log].
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Boot a scenario's guest under a reference VMM on the same KVM (QEMU/KVM; in tcg mode inside the same test
    /// host) and report what its kernel did: userspace reached, panic, warning-level lines.
    Peer {
        scenario: String,
        /// The reference VMM.
        #[arg(long, value_enum, default_value = "qemu-kvm")]
        peer: Peer,
        #[command(flatten)]
        common: Common,
    },
    /// Time boots of iovmm against plain QEMU TCG.
    BenchBoot {
        #[command(flatten)]
        common: Common,
        /// Boots per series.
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// Results JSON (a .txt table and a .log go beside it) [default: build/bench/boot-timing.json].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Scenario whose guest is booted.
        #[arg(long, default_value = "boot")]
        scenario: String,
    },
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(1))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::List {
            names,
            kernel_version,
        } => {
            let listed: Vec<&scenario::Scenario> = match kernel_version {
                Some(v) => scenario::for_kernel(v).collect(),
                None => SCENARIOS.iter().collect(),
            };
            for s in listed {
                if names {
                    println!("{}", s.name);
                    continue;
                }
                let kernels = if s.kernel_versions == scenario::ALL_KERNELS {
                    String::new()
                } else {
                    let v: Vec<&str> = s.kernel_versions.iter().map(|v| v.as_str()).collect();
                    format!(", Linux {} only", v.join(", "))
                };
                println!(
                    "{:<8} {} vCPUs, {} MiB{}{kernels}: {}\n         tests: {}",
                    s.name,
                    s.cpus,
                    s.memory_mib,
                    if s.vmm_args.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", s.vmm_args.join(" "))
                    },
                    s.summary,
                    s.tests.join(",")
                );
            }
            ExitCode::SUCCESS
        }
        Cmd::Run {
            scenario,
            common,
            junit,
            log,
        } => code(run::run(&RunOptions {
            scenario,
            host_mode: common.host_mode,
            paths: common.overrides(),
            junit,
            log,
            timeout_secs: common.timeout,
        })),
        Cmd::Peer {
            scenario,
            peer,
            common,
        } => code(peer::peer(&PeerOptions {
            scenario,
            peer,
            host_mode: common.host_mode,
            paths: common.overrides(),
            timeout_secs: common.timeout,
        })),
        Cmd::BenchBoot {
            common,
            runs,
            out,
            scenario,
        } => code(bench::bench(&BenchOptions {
            scenario,
            host_mode: common.host_mode,
            runs,
            out,
            paths: common.overrides(),
            timeout_secs: common.timeout,
        })),
    }
}
