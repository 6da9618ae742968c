//! A tiny DER tree for structural mutation: parse a certificate into TLV nodes (descending
//! into constructed values and into OCTET/BIT STRINGs that hold DER, as extensions and
//! signatures do), change nodes, and encode it again with correct lengths everywhere.

/// One TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The identifier octet (only single-octet tags are parsed as structure).
    pub tag: u8,
    /// What it holds.
    pub body: Body,
}

/// The value of a TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Bytes with no structure we descend into.
    Primitive(Vec<u8>),
    /// A constructed value: its elements.
    Constructed(Vec<Node>),
    /// An OCTET STRING or BIT STRING whose contents (after `prefix`, the BIT STRING's
    /// unused-bits octet) are DER.
    Wrapped { prefix: Vec<u8>, inner: Vec<Node> },
}

/// Every TLV of `bytes`, or `None` when they are not a sequence of well-formed TLVs.
pub fn parse(bytes: &[u8]) -> Option<Vec<Node>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (node, after) = parse_one(rest)?;
        out.push(node);
        rest = after;
    }
    Some(out)
}

fn parse_one(bytes: &[u8]) -> Option<(Node, &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    let body = if tag & 0x20 != 0 {
        match parse(content) {
            Some(children) => Body::Constructed(children),
            None => Body::Primitive(content.to_vec()),
        }
    } else {
        wrapped(tag, content).unwrap_or_else(|| Body::Primitive(content.to_vec()))
    };
    Some((Node { tag, body }, after))
}

/// OCTET STRING / BIT STRING contents that are exactly DER (re-encoding gives them back).
fn wrapped(tag: u8, content: &[u8]) -> Option<Body> {
    let (prefix, der) = match tag {
        0x04 => (&content[..0], content),
        0x03 if content.first() == Some(&0) => content.split_at(1),
        _ => return None,
    };
    let inner = parse(der)?;
    if inner.is_empty() || encode_all(&inner) != der {
        return None;
    }
    Some(Body::Wrapped {
        prefix: prefix.to_vec(),
        inner,
    })
}

/// DER of one node (definite, minimal lengths).
pub fn encode(node: &Node) -> Vec<u8> {
    let content = match &node.body {
        Body::Primitive(bytes) => bytes.clone(),
        Body::Constructed(children) => encode_all(children),
        Body::Wrapped { prefix, inner } => {
            let mut out = prefix.clone();
            out.extend(encode_all(inner));
            out
        }
    };
    let mut out = vec![node.tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend(content);
    out
}

/// DER of several nodes, concatenated.
pub fn encode_all(nodes: &[Node]) -> Vec<u8> {
    nodes.iter().flat_map(encode).collect()
}

/// The paths (child indices from the top) of every node under `nodes`, pre-order.
pub fn paths(nodes: &[Node]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    collect_paths(nodes, &mut Vec::new(), &mut out);
    out
}

fn collect_paths(nodes: &[Node], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, node) in nodes.iter().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        if let Some(children) = children(node) {
            collect_paths(children, prefix, out);
        }
        prefix.pop();
    }
}

fn children(node: &Node) -> Option<&Vec<Node>> {
    match &node.body {
        Body::Constructed(children)
        | Body::Wrapped {
            inner: children, ..
        } => Some(children),
        Body::Primitive(_) => None,
    }
}

fn children_mut(node: &mut Node) -> Option<&mut Vec<Node>> {
    match &mut node.body {
        Body::Constructed(children)
        | Body::Wrapped {
            inner: children, ..
        } => Some(children),
        Body::Primitive(_) => None,
    }
}

/// The node at `path`.
pub fn get<'a>(nodes: &'a [Node], path: &[usize]) -> Option<&'a Node> {
    let (&first, rest) = path.split_first()?;
    let node = nodes.get(first)?;
    if rest.is_empty() {
        Some(node)
    } else {
        get(children(node)?, rest)
    }
}

/// The list holding the node at `path`, and its index there.
pub fn parent_mut<'a>(
    nodes: &'a mut Vec<Node>,
    path: &[usize],
) -> Option<(&'a mut Vec<Node>, usize)> {
    let (&last, up) = path.split_last()?;
    let mut list = nodes;
    for &i in up {
        list = children_mut(list.get_mut(i)?)?;
    }
    (last < list.len()).then_some((list, last))
}
