//! The guest's kernel command line: `iovmm.scenario=NAME` and `iovmm.tests=a,b,c`.

/// What the runner asked the guest to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestArgs {
    pub scenario: Option<String>,
    /// Tests to run, in order. `None` when the command line names none.
    pub tests: Option<Vec<String>>,
}

/// Parses the contents of `/proc/cmdline`. Later occurrences of a key win, as for kernel parameters.
pub fn parse(cmdline: &str) -> GuestArgs {
    let mut args = GuestArgs::default();
    for word in cmdline.split_whitespace() {
        if let Some(v) = word.strip_prefix("iovmm.scenario=") {
            args.scenario = Some(v.to_string());
        } else if let Some(v) = word.strip_prefix("iovmm.tests=") {
            args.tests = Some(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scenario_and_tests() {
        let a = parse("console=ttyS0 iovmm.scenario=boot iovmm.tests=cpus,memory-map,,msi quiet\n");
        assert_eq!(a.scenario.as_deref(), Some("boot"));
        assert_eq!(
            a.tests,
            Some(vec!["cpus".into(), "memory-map".into(), "msi".into()])
        );
    }

    #[test]
    fn missing_keys_are_none() {
        let a = parse("console=ttyS0 iovmm.scenariox=1");
        assert_eq!(a, GuestArgs::default());
    }

    #[test]
    fn last_occurrence_wins() {
        let a = parse("iovmm.scenario=a iovmm.scenario=b");
        assert_eq!(a.scenario.as_deref(), Some("b"));
    }
}
