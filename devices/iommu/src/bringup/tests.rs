//! Engine tests against a small fake model, so every step kind is checked both passing and failing
//! independently of the real models (whose scripts run in `tests/bringup_scripts.rs`).

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::*;
use crate::request::{DmaFault, DmaRequest, Perms, Translation};

/// 0x100 bytes of plain registers; register 0x10 is a status whose bit 0 sets on the third read after
/// a write of 1 to 0x08 (a handshake to poll). DMA: IOVA page n < 4 maps to 0x10000 + n pages (page 3
/// read-only); anything else faults with reason 7 and an MSI 0xfee00000/0x42.
struct Fake {
    regs: Mutex<[u64; 32]>,
    countdown: Mutex<Option<u32>>,
    irq: Arc<dyn InterruptSink>,
}

impl Fake {
    fn build(
        _mem: Arc<dyn DmaMemory>,
        irq: Arc<dyn InterruptSink>,
    ) -> Result<Box<dyn BringupTarget>, String> {
        Ok(Box::new(Fake {
            regs: Mutex::new([0; 32]),
            countdown: Mutex::new(None),
            irq,
        }))
    }
}

impl BringupTarget for Fake {
    fn model(&self) -> &'static str {
        "fake"
    }
    fn option_string(&self) -> String {
        "fake".into()
    }
    fn mmio_size(&self) -> u64 {
        0x100
    }
    fn mmio_read(&self, offset: u64, size: u8) -> u64 {
        let mut regs = self.regs.lock().unwrap();
        if offset == 0x10 {
            let mut c = self.countdown.lock().unwrap();
            if let Some(n) = c.as_mut() {
                *n -= 1;
                if *n == 0 {
                    regs[2] |= 1;
                    *c = None;
                }
            }
        }
        let q = regs[(offset / 8) as usize];
        if size == 4 {
            (q >> ((offset % 8) * 8)) & 0xffff_ffff
        } else {
            q
        }
    }
    fn mmio_write(&self, offset: u64, size: u8, value: u64) {
        let mut regs = self.regs.lock().unwrap();
        let slot = &mut regs[(offset / 8) as usize];
        if size == 4 {
            let shift = (offset % 8) * 8;
            *slot = (*slot & !(0xffff_ffff << shift)) | value << shift;
        } else {
            *slot = value;
        }
        if offset == 0x08 && value == 1 {
            *self.countdown.lock().unwrap() = Some(3);
        }
    }
    fn translate(&self, req: &DmaRequest) -> Result<Translation, DmaFault> {
        let page = req.iova >> 12;
        let perms = if page == 3 {
            Perms {
                read: true,
                ..Default::default()
            }
        } else {
            Perms::RW
        };
        if page >= 4 || !perms.allows(req.access) {
            self.irq.msi(0xfee0_0000, 0x42);
            return Err(DmaFault {
                model: "fake".into(),
                reason: 7,
                description: "unmapped".into(),
                iova: req.iova,
                recorded: true,
            });
        }
        Ok(Translation {
            iova: page << 12,
            output: 0x10000 + (page << 12),
            page_size: 0x1000,
            perms,
        })
    }
    fn explain(&self, req: &DmaRequest) -> Value {
        hexify(
            json!({"walk": "fake table", "iova": req.iova, "steps": [{"address": 0x10000, "level": 1}]}),
        )
    }
    fn call(&self, name: &str, args: &[u64]) -> Result<Vec<u64>, String> {
        match name {
            "echo" => Ok(args.to_vec()),
            _ => Err(format!("no call `{name}`")),
        }
    }
}

fn script(steps: Value) -> Script {
    serde_json::from_value(json!({
        "name": "t", "model": "fake",
        "memory": [{"base": 0, "size": "0x10000"}, {"base": "0x100000", "size": "0x1000"}],
        "steps": steps
    }))
    .expect("test script parses")
}

fn run(steps: Value) -> Result<Report, BringupError> {
    run_with(&script(steps), "test", Fake::build)
}

fn passes(steps: Value) -> Report {
    let r = run(steps).expect("runs");
    assert!(r.passed(), "{r}");
    r
}

fn fails(steps: Value) -> Report {
    let r = run(steps).expect("runs");
    assert!(!r.passed(), "{r}");
    r
}

fn refused(steps: Value) -> String {
    run(steps).expect_err("script refused").to_string()
}

#[test]
fn memory_steps() {
    let r = passes(json!([
        {"mem_write": {"addr": "0x1000", "u64s": ["0x1122334455667788", 1]}},
        {"mem_expect": {"addr": "0x1000", "u32s": ["0x55667788", "0x11223344", 1, 0]}},
        {"mem_expect": {"addr": "0x1000", "bytes": "88 77 66 55"}},
        {"mem_write": {"addr": "0x100ff8", "u32s": [1, 2]}},
        {"mem_expect": {"addr": "0x100ff8", "u64s": ["0x200000001"]}},
        {"mem_fill": {"addr": "0x2000", "len": "0x3000", "byte": "0xa5"}},
        {"mem_expect": {"addr": "0x4ffc", "u32s": ["0xa5a5a5a5"]}},
        {"mem_expect": {"addr": "0x1000", "u64s": ["0xffff334455667788"], "mask": "0xffffffffffff"}}
    ]));
    assert_eq!(r.steps.len(), 8);
    assert_eq!(
        r.steps[0].summary,
        "0x1000 <- [0x1122334455667788, 0x0000000000000001]"
    );
    let r = fails(json!([
        {"mem_write": {"addr": 0, "bytes": "01 02 03"}},
        {"mem_expect": {"note": "third byte", "addr": 0, "bytes": "01 02 04"}},
        {"mem_write": {"addr": 0, "bytes": "00"}}
    ]));
    let f = r.failure.as_ref().unwrap();
    assert_eq!(f.at, "steps[1]");
    assert_eq!(f.note.as_deref(), Some("third byte"));
    assert!(f.actual.contains("element 2 at 0x2"), "{}", f.actual);
    assert_eq!(r.not_run, 1);
    assert!(f.walk.is_none(), "no walk for memory steps");
}

#[test]
fn mmio_steps_and_polls() {
    passes(json!([
        {"mmio_write": {"offset": "0x20", "size": 8, "value": "0x1122334455667788"}},
        {"mmio_expect": {"offset": "0x20", "size": 8, "value": "0x1122334455667788"}},
        {"mmio_expect": {"offset": "0x24", "size": 4, "value": "0x11223344"}},
        {"mmio_expect": {"offset": "0x20", "size": 4, "value": "0x88", "mask": "0xff"}},
        {"mmio_write": {"offset": 8, "size": 4, "value": 1}},
        {"mmio_poll": {"offset": "0x10", "size": 4, "value": 1, "mask": 1, "max_reads": 3}}
    ]));
    // Two reads are not enough for the three-read handshake.
    let r = fails(json!([
        {"mmio_write": {"offset": 8, "size": 4, "value": 1}},
        {"mmio_poll": {"offset": "0x10", "size": 4, "value": 1, "mask": 1, "max_reads": 2}}
    ]));
    let f = r.failure.unwrap();
    assert!(f.expected.contains("within 2 read(s)"), "{}", f.expected);
    assert_eq!(f.actual, "last read 0x00000000");
    let r = fails(json!([{"mmio_expect": {"offset": 0, "size": 4, "value": 5}}]));
    assert!(
        r.to_string().contains("FAILED at steps[0] (mmio_expect)"),
        "{r}"
    );
}

#[test]
fn dma_steps_and_the_walk_on_mismatch() {
    let r = passes(json!([
        {"dma": {"source_id": "0x18", "iova": "0x1234", "access": "write",
                 "expect": {"output": "0x11234", "page_size": 4096, "perms": "rw"}}},
        {"dma": {"source_id": "0x18", "iova": "0x3010", "access": "read",
                 "expect": {"output": "0x13010", "perms": "r"}}},
        {"dma": {"source_id": "0x18", "iova": "0x3010", "access": "write",
                 "expect": {"fault": {"reason": 7, "recorded": true}}}},
        {"expect_msi": {"address": "0xfee00000", "data": "0x42"}},
        {"expect_no_msi": {}}
    ]));
    assert_eq!(
        r.steps[0].summary,
        "0x1234 -> 0x11234 (page 0x1000 -> 0x11000, 4 KiB, rw)"
    );
    // Wrong output, wrong perms, wrong page size, unexpected fault, unexpected success, wrong reason.
    for (expect, iova, actual) in [
        (json!({"output": "0x11235"}), "0x1234", "0x1234 -> 0x11234"),
        (json!({"output": "0x11234", "perms": "r"}), "0x1234", "rw"),
        (
            json!({"output": "0x11234", "page_size": "0x200000"}),
            "0x1234",
            "4 KiB",
        ),
        (
            json!({"output": "0x15000"}),
            "0x5000",
            "fault fake fault 0x7",
        ),
        (
            json!({"fault": {"reason": 7}}),
            "0x1000",
            "0x1000 -> 0x11000",
        ),
        (
            json!({"fault": {"reason": 6}}),
            "0x5000",
            "fault fake fault 0x7",
        ),
        (
            json!({"fault": {"reason": 7, "recorded": false}}),
            "0x5000",
            "recorded: true",
        ),
    ] {
        let r = fails(json!([
            {"dma": {"note": "the one", "source_id": 0, "iova": iova, "access": "write", "expect": expect}}
        ]));
        let f = r.failure.as_ref().unwrap();
        assert!(f.actual.contains(actual), "{} vs {actual}", f.actual);
        let walk = f.walk.as_ref().expect("a DMA mismatch carries the walk");
        assert_eq!(walk["walk"], "fake table");
        let text = r.to_string();
        assert!(
            text.contains("walk (the model's side-effect-free lookup"),
            "{text}"
        );
        assert!(text.contains("\"address\": \"0x10000\""), "{text}");
        assert!(text.contains("note:     the one"), "{text}");
    }
}

#[test]
fn msi_steps() {
    let r = fails(json!([{"expect_msi": {"address": "0xfee00000", "data": 1}}]));
    assert_eq!(r.failure.unwrap().actual, "no MSI");
    let r = fails(json!([
        {"dma": {"source_id": 0, "iova": "0x9000", "access": "read", "expect": {"fault": {"reason": 7}}}},
        {"expect_no_msi": {"note": "there is one"}}
    ]));
    assert_eq!(r.failure.unwrap().actual, "MSI 0xfee00000/0x42");
    assert_eq!(r.unchecked_msis, vec![("0xfee00000".into(), "0x42".into())]);
    let r = fails(json!([
        {"dma": {"source_id": 0, "iova": "0x9000", "access": "read", "expect": {"fault": {"reason": 7}}}},
        {"expect_msi": {"address": "0xfee00000", "data": "0x43"}}
    ]));
    assert_eq!(r.failure.unwrap().actual, "MSI 0xfee00000/0x42");
}

#[test]
fn call_steps() {
    passes(json!([
        {"call": {"name": "echo", "args": [1, "0x2"], "expect": {"values": [1, 2]}}},
        {"call": {"name": "echo"}},
        {"call": {"name": "nope", "expect": {"error": "no call"}}}
    ]));
    assert!(
        fails(json!([{"call": {"name": "echo", "args": [1], "expect": {"values": [2]}}}]))
            .failure
            .unwrap()
            .actual
            .contains("[0x1]")
    );
    assert!(fails(json!([{"call": {"name": "nope"}}]))
        .failure
        .unwrap()
        .actual
        .contains("no call `nope`"));
    assert!(
        fails(json!([{"call": {"name": "echo", "expect": {"error": "x"}}}]))
            .failure
            .is_some()
    );
}

#[test]
fn repeats_name_the_iteration() {
    let r = passes(json!([
        {"repeat": {"times": 3, "steps": [
            {"mmio_write": {"offset": 8, "size": 4, "value": 1}},
            {"mmio_poll": {"offset": "0x10", "size": 4, "value": 1, "mask": 1, "max_reads": 3}},
            {"mmio_write": {"offset": "0x10", "size": 4, "value": 0}}
        ]}}
    ]));
    assert_eq!(r.steps[0].summary, "3 step(s) x 3 iteration(s) matched");
    // The status register is not cleared in the second iteration's last step, so the third's
    // mmio_expect sees 1.
    let r = fails(json!([
        {"repeat": {"times": 2, "steps": [
            {"repeat": {"times": 3, "steps": [
                {"mmio_expect": {"offset": "0x10", "size": 4, "value": 0}},
                {"mmio_write": {"offset": "0x10", "size": 4, "value": 1}},
                {"mmio_write": {"offset": "0x10", "size": 4, "value": 0}}
            ]}},
            {"mmio_write": {"offset": "0x10", "size": 4, "value": 1}}
        ]}}
    ]));
    assert_eq!(
        r.failure.unwrap().at,
        "steps[0] (iteration 2 of 2).steps[0] (iteration 1 of 3).steps[0]"
    );
}

#[test]
fn bad_scripts_are_errors_not_panics() {
    for (steps, want) in [
        (
            json!([{"mem_write": {"addr": "0xfff8", "u64s": [1, 2]}}]),
            "not inside one memory region",
        ),
        (
            json!([{"mem_write": {"addr": "0x20000", "bytes": "00"}}]),
            "not inside",
        ),
        (json!([{"mem_write": {"addr": 0}}]), "exactly one of"),
        (
            json!([{"mem_write": {"addr": 0, "u32s": ["0x100000000"]}}]),
            "32 bits",
        ),
        (
            json!([{"mem_fill": {"addr": 0, "len": "0x10001", "byte": 0}}]),
            "not inside",
        ),
        (
            json!([{"mem_fill": {"addr": 0, "len": 1, "byte": 256}}]),
            "not a byte",
        ),
        (
            json!([{"mem_expect": {"addr": 0, "u32s": [1], "mask": "0x1ffffffff"}}]),
            "wider",
        ),
        (
            json!([{"mmio_write": {"offset": "0x100", "size": 4, "value": 0}}]),
            "beyond the model's register window",
        ),
        (
            json!([{"mmio_write": {"offset": "0xfc", "size": 8, "value": 0}}]),
            "not aligned",
        ),
        (
            json!([{"mmio_write": {"offset": 0, "size": 2, "value": 0}}]),
            "4 or 8",
        ),
        (
            json!([{"mmio_write": {"offset": 0, "size": 4, "value": "0x100000000"}}]),
            "does not fit",
        ),
        (
            json!([{"mmio_poll": {"offset": 0, "size": 4, "value": 0, "mask": 0, "max_reads": 0}}]),
            "max_reads",
        ),
        (
            json!([{"mmio_poll": {"offset": 0, "size": 4, "value": 2, "mask": 1, "max_reads": 1}}]),
            "never succeed",
        ),
        (
            json!([{"dma": {"source_id": 0, "iova": 0, "access": "read", "expect": {}}}]),
            "exactly one of `output` or `fault`",
        ),
        (
            json!([{"dma": {"source_id": 0, "iova": 0, "access": "read", "expect": {"fault": {"reason": 1}, "perms": "r"}}}]),
            "go with `output`",
        ),
        (
            json!([{"dma": {"source_id": 0, "iova": 0, "access": "read", "expect": {"output": 0, "perms": "rq"}}}]),
            "not r, w or x",
        ),
        (
            json!([{"call": {"name": "echo", "expect": {}}}]),
            "exactly one of `values` or `error`",
        ),
        (
            json!([{"repeat": {"times": 100001, "steps": []}}]),
            "more than",
        ),
        (
            json!([{"repeat": {"times": 100000, "steps": [{"repeat": {"times": 1000, "steps": [{"expect_no_msi": {}}]}}]}}]),
            "at most",
        ),
    ] {
        let e = refused(steps.clone());
        assert!(e.contains(want), "{steps}: {e}");
        assert!(e.starts_with("test: steps"), "{e}");
    }
    // Nested paths name the inner step.
    let e = refused(
        json!([{"repeat": {"times": 1, "steps": [{"expect_no_msi": {}}, {"mmio_write": {"offset": 1, "size": 4, "value": 0}}]}}]),
    );
    assert!(e.starts_with("test: steps[0].steps[1] (mmio_write)"), "{e}");
    // Deep nesting.
    let mut deep = json!([{"expect_no_msi": {}}]);
    for _ in 0..=MAX_DEPTH {
        deep = json!([{"repeat": {"times": 1, "steps": deep}}]);
    }
    assert!(refused(deep).contains("nest deeper"));
}

#[test]
fn parse_errors_memory_errors_and_model_errors() {
    for (text, want) in [
        ("{", "EOF"),
        (
            r#"{"name": "x", "model": "vtd", "steps": [{"frobnicate": {}}]}"#,
            "unknown variant `frobnicate`",
        ),
        (
            r#"{"name": "x", "model": "vtd", "steps": [], "extra": 1}"#,
            "unknown field `extra`",
        ),
        (
            r#"{"name": "x", "model": "vtd", "steps": [{"mem_fill": {"addr": "0xzz", "len": 1}}]}"#,
            "not a number",
        ),
        (
            r#"{"name": "x", "model": "vtd", "steps": [{"mem_fill": {"addr": -4, "len": 1}}]}"#,
            "negative",
        ),
        (
            r#"{"name": "x", "model": "vtd", "steps": [{"dma": {"source_id": 0, "iova": 0, "access": "exec", "expect": {}}}]}"#,
            "unknown variant `exec`",
        ),
    ] {
        let e = run_str(text, "t.json").expect_err(text).to_string();
        assert!(
            e.contains(want) && e.starts_with("t.json: not a valid bring-up script"),
            "{e}"
        );
    }
    let mem = |regions: Value| {
        let s: Script = serde_json::from_value(
            json!({"name": "m", "model": "vtd", "memory": regions, "steps": []}),
        )
        .unwrap();
        run_script(&s, "m").map(|_| ()).unwrap_err().to_string()
    };
    assert!(
        mem(json!([{"base": 0, "size": "0x2000"}, {"base": "0x1000", "size": "0x1000"}]))
            .contains("overlap")
    );
    assert!(mem(json!([{"base": 0, "size": "0x40001000"}])).contains("1 GiB"));
    // No memory at all is fine for a register-only script; memory steps are then refused.
    let s: Script = serde_json::from_value(json!({"name": "m", "model": "vtd", "steps": [
        {"mmio_expect": {"offset": 0, "size": 4, "value": "0x10"}}]}))
    .unwrap();
    assert!(run_script(&s, "m").unwrap().passed());
    let s: Script = serde_json::from_value(json!({"name": "m", "model": "vtd", "steps": [
        {"mem_fill": {"addr": 0, "len": 1}}]}))
    .unwrap();
    assert!(run_script(&s, "m")
        .unwrap_err()
        .to_string()
        .contains("no guest RAM"));
    let s: Script =
        serde_json::from_value(json!({"name": "m", "model": "vtd,aw=99", "steps": []})).unwrap();
    let e = run_script(&s, "m").unwrap_err().to_string();
    assert!(e.starts_with("m: model `vtd,aw=99`"), "{e}");
    let s: Script =
        serde_json::from_value(json!({"name": "m", "model": "iommu9000", "steps": []})).unwrap();
    assert!(run_script(&s, "m")
        .unwrap_err()
        .to_string()
        .contains("unknown model"));
    let e = run_file("/nonexistent/x.json").unwrap_err().to_string();
    assert!(
        e.contains("cannot read bring-up script /nonexistent/x.json"),
        "{e}"
    );
}

#[test]
fn report_serializes_and_displays() {
    let r = fails(json!([
        {"mmio_write": {"note": "first", "offset": 0, "size": 4, "value": 1}},
        {"mmio_expect": {"offset": 0, "size": 4, "value": 2}},
        {"expect_no_msi": {}}
    ]));
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["not_run"], 1);
    assert_eq!(v["steps"][0]["note"], "first");
    assert_eq!(v["failure"]["at"], "steps[1]");
    assert_eq!(v["failure"]["expected"], "[0x0] = 0x00000002");
    let text = r.to_string();
    assert!(
        text.contains("ok   steps[0] mmio_write: [0x0] <- 0x00000001\n       # first"),
        "{text}"
    );
    assert!(
        text.ends_with("FAILED: 1 of 3 steps passed, 1 not run"),
        "{text}"
    );
    let ok = passes(json!([{"expect_no_msi": {}}]));
    assert!(ok.to_string().ends_with("PASSED: 1 of 1 steps"));
}
