//! Graphviz rendering of a [`Dump`]'s table tree: one node per table (stage, level, address, present
//! entries, the leaves walked in it), edges to its next-level tables, an entry node for the context /
//! PASID entry pointing at the top table of each stage, and a summary note.

use std::collections::HashSet;
use std::fmt::Write;

use super::config::Bdf;
use super::dump::{Dump, TableNode};
use super::walk::Stage;

/// `s` as a double-quoted dot string (`\n` in `s` becomes a line break).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c if c.is_control() => {}
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn node_id(stage: Stage, address: u64) -> String {
    let s = match stage {
        Stage::First => "s1",
        Stage::Second => "s2",
        Stage::Nested => "sn",
    };
    format!("{s}_{address:x}")
}

fn size_name(level: u32) -> String {
    match level {
        1 => "4K".into(),
        2 => "2M".into(),
        3 => "1G".into(),
        l => format!("2^{}", 12 + 9 * (l.max(1) - 1)),
    }
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::First => "first-stage",
        Stage::Second => "second-stage",
        Stage::Nested => "nested",
    }
}

fn table_label(t: &TableNode) -> String {
    let mut l = format!("{} L{} {:#x}", stage_name(t.stage), t.level, t.address);
    if let Some(g) = t.guest_address {
        let _ = write!(l, "\n(GPA {g:#x})");
    }
    let _ = write!(l, "\n{} present", t.present_entries);
    if let (Some(first), Some(last)) = (t.first_input, t.last_input) {
        let _ = write!(
            l,
            "\n{} leaves x {}: {first:#x}-{last:#x}",
            t.leaves,
            size_name(t.level)
        );
    }
    l
}

/// The dump's table tree in Graphviz dot (`dot -Tsvg`).
pub fn dump_dot(d: &Dump) -> String {
    let mut o = String::new();
    let pasid = d.pasid.map_or("-".to_string(), |p| format!("{p:#x}"));
    let title = format!("VT-d {} PASID {pasid}: {}", Bdf(d.source_id), d.mode);
    let _ = writeln!(o, "digraph vtd_dump {{");
    let _ = writeln!(
        o,
        "  graph [rankdir=LR, fontname=\"monospace\", labelloc=t, label={}];",
        quote(&title)
    );
    let _ = writeln!(
        o,
        "  node [shape=box, fontname=\"monospace\", fontsize=10];"
    );
    let _ = writeln!(o, "  edge [fontname=\"monospace\", fontsize=9];");
    let mut entry = format!("{}\n{}", Bdf(d.source_id), d.mode);
    if let Some(p) = d.pasid_entry {
        let _ = write!(entry, "\nPASID entry {p:#x}");
    }
    if let Some(did) = d.did {
        let _ = write!(entry, "\nDID {did}");
    }
    let _ = writeln!(o, "  entry [shape=ellipse, label={}];", quote(&entry));
    let known: HashSet<(Stage, u64)> = d.tables.iter().map(|t| (t.stage, t.address)).collect();
    let mut tops = HashSet::new();
    for t in &d.tables {
        let id = node_id(t.stage, t.address);
        let _ = writeln!(o, "  {id} [label={}];", quote(&table_label(t)));
        if tops.insert(t.stage) {
            let label = match t.stage {
                Stage::First => "stage 1",
                _ => "stage 2",
            };
            let _ = writeln!(o, "  entry -> {id} [label={}];", quote(label));
        }
        for c in &t.children {
            if known.contains(&(t.stage, *c)) {
                let _ = writeln!(o, "  {id} -> {};", node_id(t.stage, *c));
            }
        }
    }
    let mut summary = format!(
        "{} mappings, {} fault ranges, {} tables",
        d.mappings.len(),
        d.faults.len(),
        d.tables.len()
    );
    if d.revisits > 0 {
        let _ = write!(summary, "\n{} repeated table references", d.revisits);
    }
    if d.truncated {
        summary.push_str("\ntruncated");
    }
    let _ = writeln!(o, "  summary [shape=note, label={}];", quote(&summary));
    o.push_str("}\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\nd\u{7}"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(node_id(Stage::First, 0x1000), "s1_1000");
        assert_eq!(size_name(2), "2M");
    }
}
