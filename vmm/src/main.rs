//! `iovmm`: boot Linux on KVM with faithful IOMMU models.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use vmm::cli::{Cli, Command, DebugCommand, MachineArgs};
use vmm::devices::ExitReason;
use vmm::monitor::{MonitorTarget, Request, Response};
use vmm::platform::{MachineConfig, Platform, PlatformIo};
use vmm::vm::{self, RunConfig, RunOutcome};

/// Exit status for a run that hit `--timeout` (as timeout(1)).
const EXIT_TIMEOUT: u8 = 124;
/// Exit status for a guest that reset or panicked.
const EXIT_RESET: u8 = 125;

fn machine(args: &MachineArgs) -> MachineConfig {
    MachineConfig {
        memory_mib: args.memory,
        cpus: args.cpus,
        iommu: args.iommu.clone(),
    }
}

fn real_main(cli: Cli) -> Result<u8, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Run(args) => {
            let timeout = match args.timeout {
                Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
                Some(t) => {
                    return Err(
                        format!("--timeout must be a positive number of seconds, not {t}").into(),
                    )
                }
                None => None,
            };
            let run = RunConfig {
                kernel: args.kernel,
                initrd: args.initrd,
                cmdline: args.cmdline,
                timeout,
                monitor: args.monitor,
            };
            let outcome = vm::run(&machine(&args.machine), &run)?;
            Ok(match outcome {
                RunOutcome::Exited(ExitReason::GuestStatus(s)) => {
                    eprintln!("iovmm: guest exited with status {s}");
                    s
                }
                RunOutcome::Exited(ExitReason::PowerOff) => {
                    eprintln!("iovmm: guest powered off");
                    0
                }
                RunOutcome::Exited(ExitReason::Reset { what }) => {
                    eprintln!("iovmm: guest reset ({what})");
                    EXIT_RESET
                }
                RunOutcome::Panicked => {
                    eprintln!("iovmm: guest kernel panicked");
                    EXIT_RESET
                }
                RunOutcome::Timeout => {
                    eprintln!(
                        "iovmm: timeout: guest still running after {:?}",
                        run.timeout.unwrap_or_default()
                    );
                    EXIT_TIMEOUT
                }
                RunOutcome::Exited(ExitReason::Error(e)) => return Err(e.into()),
            })
        }
        Command::Describe(args) => {
            let desc = Platform::describe(&machine(&args))?;
            println!("{}", serde_json::to_string_pretty(&desc)?);
            Ok(0)
        }
        Command::Debug(args) => debug(args.command),
        Command::Bringup(args) => {
            let report = iommu::bringup::run_file(&args.script)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let text = report.to_string();
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
            Ok(if report.passed() { 0 } else { 1 })
        }
        Command::Tables(args) => {
            let platform = Platform::build(&machine(&args.machine), PlatformIo::detached())?;
            std::fs::create_dir_all(&args.out)?;
            for (name, bytes) in platform.table_files()? {
                let path = args.out.join(name);
                std::fs::write(&path, bytes)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(0)
        }
    }
}

/// `iovmm debug ...`: one monitor request, printed for people (or as JSON).
fn debug(cmd: DebugCommand) -> Result<u8, Box<dyn std::error::Error>> {
    let (path, json, req) = match cmd {
        DebugCommand::Ranges {
            iommu: Some(config),
            source,
            json,
            ..
        } => {
            // No guest: evaluate the configuration directly.
            let target = MonitorTarget::detached(&config.option_string())?;
            let req = Request::PermittedRanges { source };
            let resp = target.handle(&req);
            return print_response(&req, resp, json);
        }
        DebugCommand::Ranges {
            monitor,
            source,
            json,
            ..
        } => {
            let path = monitor.ok_or("--monitor or --iommu is required")?;
            (path, json, Request::PermittedRanges { source })
        }
        DebugCommand::Translate {
            monitor,
            source,
            pasid,
            iova,
            write,
        } => (
            monitor.monitor,
            monitor.json,
            Request::Translate {
                source,
                pasid,
                iova,
                write,
            },
        ),
        DebugCommand::Dump {
            monitor,
            source,
            pasid,
            dot,
        } => (
            monitor.monitor,
            monitor.json,
            Request::DumpTables { source, pasid, dot },
        ),
        DebugCommand::Stats { monitor } => (monitor.monitor, monitor.json, Request::Stats),
        DebugCommand::Inject {
            monitor,
            source,
            reason,
            count,
            hold_invalidations_ms,
        } => {
            let reason = reason
                .map(u32::try_from)
                .transpose()
                .map_err(|_| "--reason is a 32-bit code")?;
            let source = reason.map(|_| source);
            let req = Request::InjectFault {
                source,
                reason,
                count,
                hold_invalidations_ms,
            };
            (monitor.monitor, monitor.json, req)
        }
    };
    let resp = vmm::monitor::client::call(&path, &req)?;
    print_response(&req, resp, json)
}

fn print_response(
    req: &Request,
    resp: Response,
    json: bool,
) -> Result<u8, Box<dyn std::error::Error>> {
    match (resp.ok, resp.result) {
        (true, Some(result)) if json => println!("{}", serde_json::to_string_pretty(&result)?),
        (true, Some(result)) => print!("{}", vmm::monitor::client::render(req, &result)),
        _ => {
            return Err(resp
                .error
                .unwrap_or_else(|| "monitor returned no result".into())
                .into())
        }
    }
    Ok(0)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, not clap's usage block: "iovmm: error: unexpected argument '--bogus' found".
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments");
            eprintln!("iovmm: {first}");
            return ExitCode::from(2);
        }
    };
    vmm::logger::init(cli.log_level);
    match real_main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("iovmm: error: {e}");
            ExitCode::from(1)
        }
    }
}
