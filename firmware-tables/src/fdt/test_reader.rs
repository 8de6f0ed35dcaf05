//! A minimal flattened device tree reader for the unit tests (Devicetree Specification v0.4 chapter 5):
//! header, structure block tokens and the strings block, into a tree of nodes and raw properties.

/// One node with its raw properties and children, in blob order.
#[derive(Debug)]
pub(crate) struct Node {
    pub name: String,
    pub props: Vec<(String, Vec<u8>)>,
    pub children: Vec<Node>,
}

const FDT_MAGIC: u32 = 0xD00D_FEED;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
}

fn cstr(b: &[u8], off: usize) -> String {
    let end = b[off..].iter().position(|&c| c == 0).expect("NUL") + off;
    String::from_utf8(b[off..end].to_vec()).expect("UTF-8 name")
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

/// Parses `blob` (panicking on anything malformed) and returns its root node.
pub(crate) fn parse(blob: &[u8]) -> Node {
    assert_eq!(be32(blob, 0), FDT_MAGIC, "magic");
    assert_eq!(be32(blob, 4) as usize, blob.len(), "totalsize");
    let off_struct = be32(blob, 8) as usize;
    let off_strings = be32(blob, 12) as usize;
    assert!(be32(blob, 20) >= 16, "version");
    let size_strings = be32(blob, 32) as usize;
    let size_struct = be32(blob, 36) as usize;
    let strings = &blob[off_strings..off_strings + size_strings];
    let block = &blob[off_struct..off_struct + size_struct];

    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    let mut pos = 0;
    loop {
        let token = be32(block, pos);
        pos += 4;
        match token {
            FDT_BEGIN_NODE => {
                let name = cstr(block, pos);
                pos = align4(pos + name.len() + 1);
                stack.push(Node {
                    name,
                    props: Vec::new(),
                    children: Vec::new(),
                });
            }
            FDT_PROP => {
                let len = be32(block, pos) as usize;
                let name = cstr(strings, be32(block, pos + 4) as usize);
                let value = block[pos + 8..pos + 8 + len].to_vec();
                pos = align4(pos + 8 + len);
                stack
                    .last_mut()
                    .expect("property outside a node")
                    .props
                    .push((name, value));
            }
            FDT_END_NODE => {
                let done = stack.pop().expect("unbalanced END_NODE");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            FDT_NOP => {}
            FDT_END => break,
            t => panic!("unknown token {t:#x} at {pos}"),
        }
    }
    assert!(stack.is_empty(), "unclosed nodes");
    root.expect("a root node")
}

impl Node {
    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The property as big-endian 32-bit cells.
    pub fn cells(&self, name: &str) -> Vec<u32> {
        let v = self
            .prop(name)
            .unwrap_or_else(|| panic!("no {name} in {}", self.name));
        assert_eq!(v.len() % 4, 0, "{name} is not a cell array");
        v.chunks(4).map(|c| be32(c, 0)).collect()
    }

    /// The property as a string list.
    pub fn strings(&self, name: &str) -> Vec<String> {
        let v = self
            .prop(name)
            .unwrap_or_else(|| panic!("no {name} in {}", self.name));
        assert_eq!(v.last(), Some(&0), "{name} is not NUL terminated");
        v[..v.len() - 1]
            .split(|&c| c == 0)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect()
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The node anywhere below (or at) `self` whose `phandle` is `ph`.
    pub fn by_phandle(&self, ph: u32) -> Option<&Node> {
        if self.prop("phandle").is_some() && self.cells("phandle") == [ph] {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.by_phandle(ph))
    }
}
