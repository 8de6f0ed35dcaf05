//! Every bring-up script shipped in `devices/iommu/bringup/` passes against its model, and a script that
//! expects the wrong thing fails at the right step with the model's walk in the report.

use std::path::{Path, PathBuf};

use iommu::bringup::{self, Report, Script, Step};

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bringup")
}

fn scripts() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .expect("devices/iommu/bringup exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn load(name: &str) -> Script {
    let text = std::fs::read_to_string(scripts_dir().join(name)).expect("script readable");
    bringup::parse(&text, name).expect("script parses")
}

fn run(script: &Script) -> Report {
    bringup::run_script(script, &script.name).expect("script runs")
}

#[test]
fn every_shipped_script_passes() {
    let all = scripts();
    assert!(all.len() >= 2, "scripts found: {all:?}");
    for path in all {
        let report = bringup::run_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.passed(), "{}:\n{report}", path.display());
        assert!(report.steps.iter().all(|s| s.passed));
        assert!(report.unchecked_msis.is_empty(), "{report}");
        // The JSON form is what `iovmm bringup --json` prints.
        let v = serde_json::to_value(&report).expect("report serializes");
        assert_eq!(v["passed"], true);
    }
}

#[test]
fn every_step_of_every_script_has_a_note() {
    fn check(steps: &[Step], file: &str, path: &str) {
        for (i, s) in steps.iter().enumerate() {
            let at = format!("{path}[{i}]");
            assert!(
                s.note().is_some_and(|n| n.len() >= 12),
                "{file} {at} ({}) has no note: the scripts are documentation",
                s.kind()
            );
            if let Step::Repeat(r) = s {
                check(&r.steps, file, &format!("{at}.steps"));
            }
        }
    }
    for path in scripts() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let script = load(&name);
        assert_eq!(
            format!("{}.json", script.name),
            name,
            "name matches the file"
        );
        assert!(!script.description.is_empty(), "{name} has a description");
        check(&script.steps, &name, "steps");
    }
}

/// Replaces the `expect` of the first DMA step expecting `output` with another output; returns its
/// index.
fn corrupt_first_output(script: &mut Script, new_output: u64) -> usize {
    for (i, s) in script.steps.iter_mut().enumerate() {
        if let Step::Dma(d) = s {
            if d.expect.output.is_some() {
                d.expect.output = Some(bringup::Num(new_output));
                return i;
            }
        }
    }
    panic!("no DMA step with an output");
}

#[test]
fn a_wrong_expected_output_fails_at_that_step_with_the_walk() {
    let mut script = load("vtd-legacy.json");
    let index = corrupt_first_output(&mut script, 0xdead_0678);
    let report = run(&script);
    assert!(!report.passed());
    let f = report.failure.as_ref().unwrap();
    assert_eq!(f.at, format!("steps[{index}]"));
    assert_eq!(f.kind, "dma");
    assert!(f.expected.contains("0xdead0678"), "{}", f.expected);
    assert!(f.actual.contains("-> 0x800678"), "{}", f.actual);
    assert_eq!(report.steps.len(), index + 1);
    assert_eq!(report.not_run, script.steps.len() - index - 1);
    // The walk: root entry, context entry and four second-stage levels, the leaf at 0x105a28.
    let walk = f.walk.as_ref().expect("walk");
    let steps = walk["steps"].as_array().expect("walk steps");
    assert_eq!(steps.len(), 6, "{walk:#}");
    assert_eq!(steps[0]["structure"]["kind"], "root-entry");
    assert_eq!(steps[5]["address"], "0x105a28");
    assert_eq!(walk["outcome"]["translation"]["output"], "0x800000");
    let text = report.to_string();
    assert!(
        text.contains(&format!("FAILED at steps[{index}] (dma)")),
        "{text}"
    );
    assert!(text.contains("\"address\": \"0x105a28\""), "{text}");
    assert!(
        text.contains("walk (the model's side-effect-free lookup"),
        "{text}"
    );
}

#[test]
fn a_wrong_expected_fault_reason_fails_with_the_blamed_entry() {
    let mut script = load("vtd-legacy.json");
    let index = script
        .steps
        .iter()
        .position(|s| matches!(s, Step::Dma(d) if d.expect.fault.is_some()))
        .expect("a fault step");
    if let Step::Dma(d) = &mut script.steps[index] {
        d.expect.fault.as_mut().unwrap().reason = bringup::Num(0x6);
    }
    let report = run(&script);
    let f = report.failure.as_ref().expect("fails");
    assert_eq!(f.at, format!("steps[{index}]"));
    assert!(f.actual.contains("fault 0x5"), "{}", f.actual);
    let walk = f.walk.as_ref().unwrap();
    assert_eq!(walk["outcome"]["result"], "fault");
    assert_eq!(walk["outcome"]["reason"], 5);
    // The lookup blames the leaf (the last entry read).
    let blamed = walk["outcome"]["step"].as_u64().unwrap() as usize;
    assert_eq!(blamed + 1, walk["steps"].as_array().unwrap().len());
}

#[test]
fn a_failure_inside_a_repeat_names_the_iteration() {
    let text = r#"{
      "name": "r", "description": "d", "model": "vtd,sm=off",
      "memory": [{"base": 0, "size": "0x10000"}],
      "steps": [
        {"mmio_expect": {"note": "version", "offset": 0, "size": 4, "value": "0x10"}},
        {"repeat": {"note": "twice", "times": 2, "steps": [
          {"mmio_expect": {"note": "GSTS off", "offset": "0x1c", "size": 4, "value": 0}},
          {"mmio_write": {"note": "TE", "offset": "0x18", "size": 4, "value": "0x80000000"}}
        ]}}
      ]
    }"#;
    let report = bringup::run_str(text, "inline").unwrap();
    let f = report.failure.unwrap();
    assert_eq!(f.at, "steps[1] (iteration 2 of 2).steps[0]");
    assert_eq!(f.note.as_deref(), Some("GSTS off"));
    assert_eq!(f.actual, "0x80000000 (masked: 0x80000000)");
}

#[test]
fn smmuv3_wrong_output_fails_with_the_ste_cd_and_table_walk() {
    let mut script = load("smmuv3-s1.json");
    let index = script
        .steps
        .iter()
        .position(|s| matches!(s, Step::Dma(d) if d.expect.output == Some(bringup::Num(0x80_0678))))
        .expect("the first stage-1 hit");
    if let Step::Dma(d) = &mut script.steps[index] {
        d.expect.output = Some(bringup::Num(0x80_0679));
    }
    let report = run(&script);
    let f = report.failure.as_ref().expect("fails");
    assert_eq!(f.at, format!("steps[{index}]"));
    assert!(f.actual.contains("-> 0x800678"), "{}", f.actual);
    let walk = f.walk.as_ref().expect("walk");
    let steps = walk["steps"].as_array().expect("walk steps");
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["ste", "cd", "walk", "walk", "walk", "walk"],
        "{walk:#}"
    );
    assert_eq!(steps[0]["address"], "0x100600");
    assert_eq!(steps[1]["address"], "0x300000");
    assert_eq!(steps[5]["desc_addr"], "0x403a28");
    assert_eq!(steps[5]["desc"], "0x800443");
    assert!(report.to_string().contains("\"desc_addr\": \"0x403a28\""));
}
