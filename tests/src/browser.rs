//! A real browser for the web console's tests: Debian's chromium,
//! headless, driven over the DevTools protocol (headless_chrome; it never
//! downloads a browser). Each `Page` is a tab in its own browser context
//! (its own cookies), so an operator and two consumers can be signed in at
//! once. Screenshots go to `target/console-e2e/` as test artifacts.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use headless_chrome::{
    Browser, LaunchOptions, Tab, protocol::cdp::Page::CaptureScreenshotFormatOption,
};

/// The browser binary: Debian's chromium (its real binary, without the
/// wrapper script), or `CHROMIUM` when set.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    found.expect("chromium is not installed: run `cargo xtask setup` (Debian package chromium)")
}

/// Where screenshots are kept: `target/console-e2e/`.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Chromium {
    browser: Browser,
}

impl Chromium {
    pub fn start() -> Chromium {
        let args: Vec<&OsStr> = vec![
            OsStr::new("--no-first-run"),
            OsStr::new("--disable-dev-shm-usage"),
            OsStr::new("--disable-background-networking"),
            OsStr::new("--disable-component-update"),
            OsStr::new("--font-render-hinting=none"),
        ];
        let options = LaunchOptions::default_builder()
            .path(Some(chromium()))
            .headless(true)
            // Root in a container: chromium's sandbox needs user namespaces.
            .sandbox(false)
            .window_size(Some((1280, 900)))
            // The control plane's certificate comes from the test's own CA.
            .ignore_certificate_errors(true)
            .idle_browser_timeout(Duration::from_secs(600))
            .args(args)
            .build()
            .expect("launch options");
        let browser = Browser::new(options).expect("starting headless chromium");
        Chromium { browser }
    }

    /// A tab with cookies of its own.
    pub fn page(&self) -> Page {
        let context = self.browser.new_context().expect("a browser context");
        let tab = context.new_tab().expect("a tab");
        tab.set_default_timeout(Duration::from_secs(20));
        // The context lives as long as the browser; the tab keeps it.
        std::mem::forget(context);
        Page { tab }
    }
}

pub struct Page {
    pub tab: Arc<Tab>,
}

impl Page {
    /// Loads `url` afresh (also when only its fragment differs from the
    /// page shown, which would otherwise not reload it).
    pub fn goto(&self, url: &str) -> &Page {
        self.tab.navigate_to("about:blank").unwrap();
        self.tab.wait_until_navigated().unwrap();
        self.tab.navigate_to(url).unwrap();
        self.tab.wait_until_navigated().unwrap();
        self
    }

    /// Types `text` into the (empty) input `selector`.
    pub fn fill(&self, selector: &str, text: &str) -> &Page {
        let el = self.tab.wait_for_element(selector).unwrap();
        el.click().unwrap();
        // Select what is there, so typing replaces it.
        el.call_js_fn(
            "function() { this.select && this.select(); }",
            vec![],
            false,
        )
        .unwrap();
        self.tab.type_str(text).unwrap();
        self
    }

    pub fn click(&self, selector: &str) -> &Page {
        self.tab
            .wait_for_element(selector)
            .unwrap()
            .click()
            .unwrap();
        self
    }

    /// Clicks the first `selector` whose text contains `text`.
    pub fn click_text(&self, selector: &str, text: &str) -> &Page {
        self.wait(&format!("a {selector} with {text:?}"), || {
            let found = self.js(&format!(
                "(() => {{ const e = [...document.querySelectorAll({sel})].find(e => e.textContent.includes({text})); if (e) {{ e.click(); return true; }} return false; }})()",
                sel = serde_json::to_string(selector).unwrap(),
                text = serde_json::to_string(text).unwrap(),
            ));
            (found == serde_json::Value::Bool(true)).then_some(())
        });
        self
    }

    /// The text of `selector` (waiting for it to exist).
    pub fn text(&self, selector: &str) -> String {
        self.tab
            .wait_for_element(selector)
            .unwrap()
            .get_inner_text()
            .unwrap()
    }

    /// Waits until the text of `selector` contains `needle`; that text.
    pub fn wait_text(&self, selector: &str, needle: &str) -> String {
        self.wait(&format!("{needle:?} in {selector}"), || {
            let text = self.js(&format!(
                "(() => {{ const e = document.querySelector({}); return e ? e.innerText : null; }})()",
                serde_json::to_string(selector).unwrap()
            ));
            text.as_str().filter(|t| t.contains(needle)).map(String::from)
        })
    }

    /// Polls `f` every 100 ms for 20 s.
    pub fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                let body = self.js("document.body.innerText");
                panic!("waited 20 s for {what}; the page shows:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Evaluates `expression` (awaiting a promise); its JSON value.
    pub fn js(&self, expression: &str) -> serde_json::Value {
        let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
        let out = self.tab.evaluate(&wrapped, true).unwrap();
        out.value
            .and_then(|v| v.as_str().map(String::from))
            .map(|s| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
            .unwrap_or(serde_json::Value::Null)
    }

    /// A full-page PNG under `target/console-e2e/NAME.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        let path = artifacts().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}
