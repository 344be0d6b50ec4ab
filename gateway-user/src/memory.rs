//! Giving memory back to the system after a configuration is loaded.
//!
//! Loading a large catalog allocates far more than it keeps (100,000
//! subscriptions: about 200 MiB of YAML trees for about 17 MiB kept).
//! mimalloc keeps freed pages for reuse and purges them on later allocator
//! activity of the same thread, which a loader thread that goes idle never
//! has: collecting right after a load returns them.

#[expect(
    unsafe_code,
    reason = "mi_collect is an FFI call that the mimalloc crate does not wrap"
)]
pub fn release_freed() {
    // SAFETY: mi_collect has no preconditions; it only returns the calling
    // thread's unused pages (a no-op when mimalloc is not the allocator).
    unsafe { libmimalloc_sys::mi_collect(true) }
}
