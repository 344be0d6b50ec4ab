//! Bad proxy configuration given to the real binary: one line naming the
//! file, the field and the fix; a non-zero exit; nothing starts.

use edgegw_tests::process::{TempDir, edgegw, free_port};

fn run_with(tag: &str, rest: &str) -> (bool, String) {
    let tmp = TempDir::new(tag);
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n{rest}",
        free_port()
    );
    let cfg = tmp.write("c.toml", &text);
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_bad_section_is_one_clear_line() {
    let api = "[[apis]]\nname = \"orders\"\npath = \"/orders\"\nbackend = \"http://127.0.0.1:9\"\n";
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "tpl",
            format!(
                "{api}[[apis.operations]]\nname = \"get\"\nmethod = \"GET\"\nurl = \"/a/*/b\"\n"
            ),
            &[
                "c.toml",
                "api \"orders\"",
                "operation \"get\"",
                "'*' is only allowed as the last segment",
            ],
        ),
        (
            "meth",
            format!("{api}[[apis.operations]]\nname = \"get\"\nmethod = \"GE T\"\nurl = \"/\"\n"),
            &["operation \"get\"", "is not an HTTP method"],
        ),
        (
            "bkn",
            "[[apis]]\nname = \"a\"\npath = \"/\"\nbackend = \"nosuch\"\n".to_string(),
            &[
                "api \"a\"",
                "backend \"nosuch\" is neither a URL nor the name of a [[backends]] entry",
            ],
        ),
        (
            "lim",
            format!("[limits]\nmax_header_bytes = 100\n{api}"),
            &["limits.max_header_bytes", "minimum 8192"],
        ),
        (
            "cert",
            format!(
                "[tls]\nlisten = \"127.0.0.1:{}\"\n[[tls.certificates]]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/c.key\"\n{api}",
                free_port()
            ),
            &[
                "cannot read certificate file /nonexistent/c.pem",
                "check the path",
            ],
        ),
        (
            "proto",
            format!(
                "[[backends]]\nname = \"b\"\nurl = \"http://127.0.0.1:9\"\nprotocol = \"h3\"\n{api}"
            ),
            &[
                "backend \"b\"",
                "protocol \"h3\" is unknown",
                "\"http1\" or \"http2\"",
            ],
        ),
    ];
    for (tag, rest, wanted) in cases {
        let (ok, stderr) = run_with(tag, &rest);
        assert!(!ok, "{tag}: started with a bad config");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{tag}: expected one line, got:\n{stderr}");
        for w in wanted {
            assert!(lines[0].contains(w), "{tag}: {w:?} not in {:?}", lines[0]);
        }
    }
}
