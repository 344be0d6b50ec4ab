use super::*;

fn ok(raw: &str) -> String {
    match canonical(raw) {
        Ok(c) => c.path.into_owned(),
        Err(e) => panic!("{raw}: {e:?}"),
    }
}

#[test]
fn canonical_paths_are_borrowed_as_they_are() {
    for raw in [
        "/",
        "/a",
        "/a/",
        "/api/items/42",
        "/a.b/c..d/.e/f./...",
        "/x:y@z!$&'()*+,=-_~",
        "/UPPER/lower/0123",
    ] {
        let c = canonical(raw).unwrap();
        assert!(matches!(c.path, Cow::Borrowed(_)), "{raw}");
        assert_eq!(c.path, raw);
        assert_eq!((c.floor, c.encoded_slash), (usize::MAX, false), "{raw}");
    }
}

#[test]
fn table_of_normalisations() {
    let cases = [
        // Dot segments, RFC 3986 §5.2.4.
        ("/api/public/../admin", "/api/admin"),
        ("/a/./b", "/a/b"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/b/../", "/a/"),
        ("/a/..", "/"),
        ("/.", "/"),
        ("/./", "/"),
        ("/a/b/c/../../d", "/a/d"),
        // Decoded dots are dots.
        ("/api/public/%2e%2e/admin", "/api/admin"),
        ("/api/public/%2E%2E/admin", "/api/admin"),
        ("/api/public/.%2e/admin", "/api/admin"),
        ("/api/public/%2e./admin", "/api/admin"),
        ("/api/%2e/admin", "/api/admin"),
        // Empty segments merged, a trailing slash kept.
        ("//a", "/a"),
        ("/a//b", "/a/b"),
        ("/a///b//", "/a/b/"),
        ("/api/public//../admin", "/api/admin"),
        ("//", "/"),
        // Unreserved escapes decoded, others upper-cased and kept.
        ("/%41%62%63%2D%5F%7E%30", "/Abc-_~0"),
        ("/a%20b", "/a%20b"),
        ("/a%3fb%3Fc", "/a%3Fb%3Fc"),
        ("/%c3%a9t%C3%A9", "/%C3%A9t%C3%A9"),
        ("/a%25b", "/a%25b"),
        // Never decoded twice.
        ("/api/%252e%252e/admin", "/api/%252e%252e/admin"),
        ("/api/%25%32%65", "/api/%252e"),
        // Raw characters outside pchar escaped; non-ASCII as UTF-8.
        ("/a\"b", "/a%22b"),
        ("/{x}|[y]^`", "/%7Bx%7D%7C%5By%5D%5E%60"),
        ("/caf\u{e9}", "/caf%C3%A9"),
        // `;` is ordinary data but after a dot segment.
        ("/a;b/c;", "/a;b/c;"),
        ("/a/...;x", "/a/...;x"),
    ];
    for (raw, want) in cases {
        assert_eq!(ok(raw), want, "{raw}");
        // Canonical is a fixed point: borrowed, unchanged.
        let again = canonical(want).unwrap();
        assert_eq!(again.path, want, "{want} again");
    }
}

#[test]
fn table_of_refusals() {
    use PathError::*;
    let cases = [
        ("*", NotAbsolute),
        ("", NotAbsolute),
        ("a/b", NotAbsolute),
        ("/..", EscapesRoot),
        ("/../a", EscapesRoot),
        ("/a/../..", EscapesRoot),
        ("/a/%2e%2e/%2E%2E/b", EscapesRoot),
        ("//../", EscapesRoot),
        ("/a/%", Malformed),
        ("/a/%2", Malformed),
        ("/a/%zz", Malformed),
        ("/a/%u002e", Malformed),
        ("/a/%%32%65", Malformed),
        ("/a\\b", Backslash),
        ("/a/%5c../b", Backslash),
        ("/a/%5C", Backslash),
        ("/a/..%00/b", ControlChar),
        ("/a%0d%0aX: y", ControlChar),
        ("/a%7f", ControlChar),
        ("/a\u{1}", ControlChar),
        ("/a/%c0%ae%c0%ae/b", NotUtf8),
        ("/a/%ff", NotUtf8),
        ("/a/%c3", NotUtf8),
        ("/a/%c3x", NotUtf8),
        ("/a/%ed%a0%80", NotUtf8),
        ("/api/public/..%2fadmin", EncodedSlashDot),
        ("/api/public/..%2F", EncodedSlashDot),
        ("/api/public/%2e%2e%2fadmin", EncodedSlashDot),
        ("/api/x%2F..", EncodedSlashDot),
        ("/api/x%2F.%2Fy", EncodedSlashDot),
        ("/api/public/..;/admin", DotParams),
        ("/api/public/.;x/admin", DotParams),
        ("/api/public/%2e%2e;/admin", DotParams),
    ];
    for (raw, want) in cases {
        assert_eq!(canonical(raw), Err(want), "{raw:?}");
    }
}

#[test]
fn floor_counts_the_segments_no_dot_dot_went_over() {
    let floor = |raw: &str| canonical(raw).unwrap().floor;
    assert_eq!(floor("/api/public/../admin"), 1);
    assert_eq!(floor("/other/../api/admin"), 0);
    assert_eq!(floor("/a/b/c/../../d"), 1);
    assert_eq!(floor("/a/b/../c/../d"), 1);
    assert_eq!(floor("/a/b/c/../d"), 2);
    assert_eq!(floor("/a/./b"), usize::MAX);
    assert_eq!(floor("/a//b"), usize::MAX);
}

#[test]
fn encoded_slashes_are_reported_and_kept_as_data() {
    let c = canonical("/files/a%2fb/c").unwrap();
    assert_eq!(c.path, "/files/a%2Fb/c");
    assert!(c.encoded_slash);
    // Popped by `..`, it is gone from what is forwarded.
    let c = canonical("/files/a%2fb/../c").unwrap();
    assert_eq!(c.path, "/files/c");
    assert!(!c.encoded_slash);
}

/// A small deterministic generator (no seed from the clock: a failure is
/// reproducible).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Dot-segment removal cross-checked with an independent implementation:
/// Python's `urllib.parse.urljoin` (RFC 3986 §5.2) on thousands of
/// generated paths. Python gets the path with slashes merged (merging is
/// this proxy's choice, like nginx's; `urljoin` keeps empty segments) and
/// dots decoded; this side gets random `%2e`/`%2E` forms of the dots.
/// Paths whose `..` climbs above the root are refused here, and clamped
/// by Python: those are checked to climb above the root by Python's own
/// count.
#[test]
fn dot_segment_removal_agrees_with_python_urljoin() {
    const SEGMENTS: [&str; 10] = ["a", "b", ".", "..", "", "c.d", "...", ".a", "a.", "%41"];
    let mut rng = Lcg(18);
    let mut cases = Vec::new();
    for _ in 0..4000 {
        let n = 1 + rng.below(7);
        let mut plain = String::new();
        let mut encoded = String::new();
        for _ in 0..n {
            let s = SEGMENTS[rng.below(SEGMENTS.len())];
            plain.push('/');
            encoded.push('/');
            // Python is given decoded text (`%41` is `A`).
            plain.push_str(if s == "%41" { "A" } else { s });
            for ch in s.chars() {
                match (ch, rng.below(3)) {
                    ('.', 0) => encoded.push_str("%2e"),
                    ('.', 1) => encoded.push_str("%2E"),
                    _ => encoded.push(ch),
                }
            }
        }
        let mut merged = String::new();
        for ch in plain.chars() {
            if !(ch == '/' && merged.ends_with('/')) {
                merged.push(ch);
            }
        }
        cases.push((encoded, merged));
    }
    let script = r#"
import sys
from urllib.parse import urljoin
for line in sys.stdin.read().split("\n")[:-1]:
    depth, over = 0, False
    for seg in line.split("/")[1:]:
        if seg == "..":
            over |= depth == 0
            depth = max(depth - 1, 0)
        elif seg not in (".", ""):
            depth += 1
    print(("over " if over else "ok ") + urljoin("http://h/", line)[len("http://h"):])
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the cross-check (apt-get install python3)");
    let input: String = cases.iter().map(|(_, m)| format!("{m}\n")).collect();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    let answers = String::from_utf8(out.stdout).unwrap();
    let answers: Vec<&str> = answers.lines().collect();
    assert_eq!(answers.len(), cases.len());
    let mut compared = 0;
    for ((encoded, merged), answer) in cases.iter().zip(answers) {
        let (verdict, python) = answer.split_once(' ').unwrap();
        match canonical(encoded) {
            Ok(c) => {
                assert_eq!(
                    verdict, "ok",
                    "{encoded} ({merged}): python saw a climb above /"
                );
                assert_eq!(c.path, python, "{encoded} ({merged})");
                compared += 1;
            }
            Err(PathError::EscapesRoot) => {
                assert_eq!(
                    verdict, "over",
                    "{encoded} ({merged}) refused, python: {python}"
                );
            }
            Err(e) => panic!("{encoded}: {e:?}"),
        }
    }
    assert!(compared > 1000, "only {compared} paths compared");
}

/// The one-pass check against the rebuild it lets the request skip: over
/// every path of up to 7 bytes from `/ . a % ;`, a path it calls canonical
/// is one the rebuild leaves as it is, and one the rebuild leaves as it is
/// (with nothing to report) it calls canonical.
#[test]
fn the_fast_check_agrees_with_the_rebuild() {
    let alphabet = [b'/', b'.', b'a', b'%', b';'];
    let mut paths = vec![b"/".to_vec()];
    let mut checked = 0;
    while let Some(p) = paths.pop() {
        let text = std::str::from_utf8(&p).unwrap();
        let slow = rebuild(text);
        let same = slow
            .as_ref()
            .is_ok_and(|c| c.path == text && c.floor == usize::MAX && !c.encoded_slash);
        // `;` is data, but rebuilt to look at `..;`: borrowed only without it.
        let expected = same && !p.contains(&b';');
        assert_eq!(is_canonical(&p), expected, "{text:?}: rebuilt {slow:?}");
        checked += 1;
        if p.len() < 7 {
            for b in alphabet {
                let mut next = p.clone();
                next.push(b);
                paths.push(next);
            }
        }
    }
    assert_eq!(checked, (0..7).map(|n| 5usize.pow(n)).sum::<usize>());
}
