//! `cpus`: online CPUs and /proc/cpuinfo processors equal the vCPU count the VMM published.

use super::context::Context;
use super::report::Report;

/// Counts the CPUs in a kernel CPU list such as `0-3,5,7-8`.
pub fn count_cpu_list(list: &str) -> Result<u32, String> {
    let list = list.trim();
    if list.is_empty() {
        return Ok(0);
    }
    let mut n: u32 = 0;
    for part in list.split(',') {
        let part = part.trim();
        let count = match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a
                    .parse()
                    .map_err(|_| format!("bad cpu list item {part:?}"))?;
                let b: u32 = b
                    .parse()
                    .map_err(|_| format!("bad cpu list item {part:?}"))?;
                if b < a {
                    return Err(format!("bad cpu range {part:?}"));
                }
                b - a + 1
            }
            None => {
                part.parse::<u32>()
                    .map_err(|_| format!("bad cpu list item {part:?}"))?;
                1
            }
        };
        n = n.saturating_add(count);
    }
    Ok(n)
}

/// Counts `processor : N` lines in /proc/cpuinfo.
pub fn count_cpuinfo_processors(cpuinfo: &str) -> u32 {
    cpuinfo
        .lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| k.trim() == "processor")
        })
        .count() as u32
}

/// Compares both views with the expected count; returns the mismatches.
pub fn compare(expected: u8, online_list: &str, cpuinfo: &str) -> Vec<String> {
    let mut errs = Vec::new();
    match count_cpu_list(online_list) {
        Ok(n) if n == u32::from(expected) => {}
        Ok(n) => errs.push(format!(
            "online cpus {:?} = {n}, expected {expected}",
            online_list.trim()
        )),
        Err(e) => errs.push(format!("/sys/devices/system/cpu/online: {e}")),
    }
    let procs = count_cpuinfo_processors(cpuinfo);
    if procs != u32::from(expected) {
        errs.push(format!(
            "/proc/cpuinfo lists {procs} processors, expected {expected}"
        ));
    }
    errs
}

pub fn run(ctx: &Context) -> Report {
    let mut r = Report::new();
    let expect = match &ctx.expect {
        Ok(e) => e,
        Err(e) => return Report::failure(format!("no expectations: {e}")),
    };
    let online = match ctx.read("sys/devices/system/cpu/online") {
        Ok(s) => s,
        Err(e) => return Report::failure(e),
    };
    let cpuinfo = match ctx.read("proc/cpuinfo") {
        Ok(s) => s,
        Err(e) => return Report::failure(e),
    };
    r.diag(format!(
        "expected {} cpus; online {:?}",
        expect.cpus,
        online.trim()
    ));
    r.fail_all(compare(expect.cpus, &online, &cpuinfo));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0\n"), Ok(1));
        assert_eq!(count_cpu_list("0-1"), Ok(2));
        assert_eq!(count_cpu_list("0-3,5,7-8"), Ok(7));
        assert_eq!(count_cpu_list(""), Ok(0));
        assert!(count_cpu_list("3-1").is_err());
        assert!(count_cpu_list("x").is_err());
    }

    #[test]
    fn cpuinfo_processors() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\n\nprocessor\t: 1\nflags\t\t: fpu processor\n";
        assert_eq!(count_cpuinfo_processors(info), 2);
    }

    #[test]
    fn compare_reports_each_mismatch() {
        assert!(compare(2, "0-1\n", "processor : 0\nprocessor : 1\n").is_empty());
        let errs = compare(2, "0\n", "processor : 0\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("expected 2"));
    }
}
