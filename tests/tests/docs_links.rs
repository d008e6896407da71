//! The line links of the docs (`[file.rs:N](../path/file.rs#LN)`) point at lines of code
//! that exist and say something: code moves, and a link left behind lands on a blank
//! line, a lone brace or past the end of the file.

use std::path::Path;

/// Every `(target path, line)` of the links `](../PATH#LN)` in `text`.
fn line_links(text: &str) -> Vec<(String, usize)> {
    let mut links = Vec::new();
    for (at, _) in text.match_indices("](../") {
        let rest = &text[at + 5..];
        let Some(end) = rest.find(')') else { continue };
        let Some((path, line)) = rest[..end].split_once("#L") else {
            continue;
        };
        if let Ok(n) = line.parse() {
            links.push((path.to_string(), n));
        }
    }
    links
}

#[test]
fn doc_line_links_land_on_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for doc in [
        "docs/chapter.md",
        "docs/architecture.md",
        "docs/benchmarks.md",
    ] {
        let text = std::fs::read_to_string(root.join(doc)).expect(doc);
        for (path, n) in line_links(&text) {
            let file = root.join(&path);
            let code = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{doc}: link to {path}: {e}"));
            let line = code.lines().nth(n.wrapping_sub(1)).map(str::trim);
            let what = format!("{doc}: {path}#L{n} is {line:?}");
            let Some(line) = line else {
                panic!("{what}: past the end of the file")
            };
            let says_something = line.chars().filter(|c| c.is_alphanumeric()).count() >= 3;
            assert!(says_something, "{what}: the code it pointed at has moved");
            checked += 1;
        }
    }
    // chapter.md links the book's equations to the code (about 30 links).
    assert!(checked >= 20, "only {checked} line links found");
}

#[test]
fn line_links_are_parsed() {
    let text = "see [a.rs:3](../crates/a.rs#L3) and [b](../b.rs) and [c.rs:x](../c.rs#Lx)";
    assert_eq!(line_links(text), [("crates/a.rs".to_string(), 3)]);
}
