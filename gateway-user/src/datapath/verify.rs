//! Loading (verifying) an XDP program, retrying when the verifier was
//! interrupted.
//!
//! The kernel's verifier gives up with EAGAIN when a signal is pending for
//! the loading thread (a SIGCHLD, a SIGHUP during start-up...); libbpf retries
//! such loads and so do we, a bounded number of times.

use aya::programs::{ProgramError, Xdp};

const ATTEMPTS: usize = 5;

pub fn load(program: &mut Xdp) -> Result<(), ProgramError> {
    let mut attempt = 1;
    loop {
        match program.load() {
            Err(ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(nix::errno::Errno::EAGAIN as i32)
                    && attempt < ATTEMPTS =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}
