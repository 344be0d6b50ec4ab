//! Comparing strings while evaluating allocates nothing: a counting
//! allocator around evaluations of comparisons that read the request.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
};

use edgegw_policy_expr::{Expression, Value};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only an atomic increment.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`, and `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One test in this binary: no other thread allocates while it counts.
#[test]
fn string_comparisons_do_not_allocate() {
    let fixture = common::Fixture::new();
    let ctx = fixture.ctx();
    let cases = [
        r#"@(context.Request.Headers.GetValueOrDefault("X-Tier", "") == "gold")"#,
        r#"@(context.Request.Headers.GetValueOrDefault("x-none", "") != "gold")"#,
        r#"@(context.Request.Method.Equals("post", StringComparison.OrdinalIgnoreCase))"#,
        r#"@(context.Request.Headers.GetValueOrDefault("User-Agent", "").Contains("ipad", StringComparison.OrdinalIgnoreCase))"#,
        r#"@(context.Request.Headers.GetValueOrDefault("User-Agent", "").StartsWith("Mozilla"))"#,
        r#"@(context.Subscription.Id == "sub-1" && context.Request.Url.Path.EndsWith("/42"))"#,
        r#"@(context.Request.Url.Query.GetValueOrDefault("tier", "") == "gold")"#,
        r#"@((string)context.Variables["maxAge"] == "120")"#,
        r#"@(context.Variables.GetValueOrDefault<string>("maxAge", "") == "120")"#,
        r#"@(context.Response.StatusCode >= 500 || context.Request.Headers.ContainsKey("x-tier"))"#,
        r#"@(string.Equals(context.Api.Name, "ORDERS API", StringComparison.OrdinalIgnoreCase))"#,
        r#"@(context.Request.Headers.GetValueOrDefault("X-Tier", "").Equals("GOLD", StringComparison.OrdinalIgnoreCase) ? "premium" : "basic")"#,
    ];
    for text in cases {
        let expr = Expression::parse(text).unwrap();
        // Warm up: anything lazily set up on first use is not per request.
        let first = expr.eval(&ctx).unwrap();
        assert!(
            matches!(first, Value::Bool(true) | Value::Str(_)),
            "{text}: {first:?}"
        );
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for _ in 0..100 {
            let v = expr.eval(&ctx).unwrap();
            std::hint::black_box(v);
        }
        let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert_eq!(during, 0, "{text}: {during} allocations in 100 evaluations");
    }
    // The counter counts: a concatenation does allocate.
    let concat = Expression::parse(r#"@(context.Request.Method + "!")"#).unwrap();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    std::hint::black_box(concat.eval(&ctx).unwrap());
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);
}
