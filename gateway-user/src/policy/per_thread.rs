//! Per-thread copies of configured header names and values. Requests clone
//! the copy of the thread that serves them: clones of one shared copy
//! would bounce its reference count between the cores serving requests.

use hyper::header::{HeaderName, HeaderValue};
use thread_local::ThreadLocal;

/// A value whose clones need not share memory with the original.
pub trait DeepCopy {
    fn deep_copy(&self) -> Self;
}

impl DeepCopy for HeaderValue {
    fn deep_copy(&self) -> Self {
        let mut v = HeaderValue::from_bytes(self.as_bytes()).expect("a header value stays valid");
        v.set_sensitive(self.is_sensitive());
        v
    }
}

impl DeepCopy for HeaderName {
    fn deep_copy(&self) -> Self {
        HeaderName::from_bytes(self.as_str().as_bytes()).expect("a header name stays valid")
    }
}

/// A configured value with one copy per thread that uses it.
pub struct PerThread<T: DeepCopy + Send> {
    original: T,
    /// Boxed: the table is large, and policies are enum variants.
    copies: Box<ThreadLocal<T>>,
}

impl<T: DeepCopy + Send> PerThread<T> {
    pub fn new(original: T) -> Self {
        PerThread {
            original,
            copies: Box::default(),
        }
    }

    /// The calling thread's copy, to clone.
    pub fn get(&self) -> &T {
        self.copies.get_or(|| self.original.deep_copy())
    }
}

impl<T: DeepCopy + Send> std::ops::Deref for PerThread<T> {
    type Target = T;

    /// The original, for reads that do not clone.
    fn deref(&self) -> &T {
        &self.original
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_gets_an_equal_copy_of_its_own() {
        let mut secret = HeaderValue::from_static("s3cr3t");
        secret.set_sensitive(true);
        let value = PerThread::new(secret);
        let name = PerThread::new(HeaderName::from_static("x-custom"));
        let here = value.get().as_bytes().as_ptr() as usize;
        assert_eq!(
            here,
            value.get().as_bytes().as_ptr() as usize,
            "one copy per thread"
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_ne!(value.get().as_bytes().as_ptr() as usize, here);
                assert_eq!(value.get(), "s3cr3t");
                assert!(value.get().is_sensitive());
                assert_eq!(name.get(), "x-custom");
            });
        });
        assert_eq!(*name, "x-custom");
    }
}
