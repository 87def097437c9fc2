//! The X-Ray trace id in the environment, without a memory leak.
//!
//! `lambda_runtime` (1.5) stores every invocation's trace id with
//! `std::env::set_var("_X_AMZN_TRACE_ID", ..)`, which is glibc's `setenv`. glibc never frees a
//! value given to `setenv` (a pointer from an earlier `getenv` may still be in use), and trace ids
//! are unique, so a warm instance keeps about 110 bytes per invocation: 100 MB a day at 10 requests
//! a second, an out-of-memory error for a busy function that Lambda keeps warm long enough.
//!
//! So the process gets its own `setenv`: that one variable lives in a fixed buffer, installed in
//! the environment with `putenv` (which stores the pointer and allocates nothing); any other name,
//! and a value too long for the buffer, goes to glibc's `setenv`. This is sound because
//! - Rust reads and writes the environment under one lock (`std::env`), so no Rust reader sees the
//!   buffer while it is rewritten; nothing in this process reads the variable from C;
//! - the buffer's `_X_AMZN_TRACE_ID=` prefix never changes, so a C `getenv` of another name that
//!   walks past the entry only ever compares those constant bytes;
//! - the buffer is a static: it outlives every pointer handed out.
//!
//! Only on Linux with glibc (Lambda's `provided.al2023`); elsewhere nothing is replaced.
//!
//! The replacement takes effect by being linked (the executable's `setenv` comes before glibc's);
//! each function's `main` calls [`check_setenv_replaced`] at cold start, which says whether it did.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::cell::UnsafeCell;
    use std::ffi::{c_char, c_int, CStr};
    use std::sync::{Mutex, OnceLock};

    pub(super) const NAME: &[u8] = b"_X_AMZN_TRACE_ID";
    /// X-Ray trace headers are well under 256 bytes; longer values go to glibc.
    pub(super) const VALUE_CAPACITY: usize = 1024;
    const SLOT_LEN: usize = NAME.len() + 1 + VALUE_CAPACITY + 1;

    struct Slot(UnsafeCell<[u8; SLOT_LEN]>);
    // SAFETY: written only under `WRITER`, and read by libc's environment functions (see above).
    unsafe impl Sync for Slot {}

    static SLOT: Slot = Slot(UnsafeCell::new([0; SLOT_LEN]));
    static WRITER: Mutex<()> = Mutex::new(());

    type SetenvFn = unsafe extern "C" fn(*const c_char, *const c_char, c_int) -> c_int;

    /// glibc's own `setenv`, the next definition after this executable's.
    fn glibc_setenv() -> Option<SetenvFn> {
        static REAL: OnceLock<usize> = OnceLock::new();
        // SAFETY: dlsym with a NUL-terminated name; the result, when not null, is glibc's
        // `setenv`, whose signature is `SetenvFn`.
        let address = *REAL
            .get_or_init(|| unsafe { libc::dlsym(libc::RTLD_NEXT, c"setenv".as_ptr()) as usize });
        (address != 0).then(|| unsafe { std::mem::transmute::<usize, SetenvFn>(address) })
    }

    /// # Safety
    /// As `setenv(3)`: `name` and `value` are NUL-terminated strings (or null: an error).
    #[no_mangle]
    pub unsafe extern "C" fn setenv(
        name: *const c_char,
        value: *const c_char,
        overwrite: c_int,
    ) -> c_int {
        if !name.is_null() && !value.is_null() {
            // SAFETY: non-null C strings, as the caller promises.
            let (key, bytes) = unsafe { (CStr::from_ptr(name), CStr::from_ptr(value)) };
            if key.to_bytes() == NAME && bytes.to_bytes().len() <= VALUE_CAPACITY {
                let _writer = WRITER.lock().unwrap_or_else(|p| p.into_inner());
                // SAFETY: getenv with a C string; only the null-ness of the result is used.
                if overwrite == 0 && unsafe { !libc::getenv(name).is_null() } {
                    return 0;
                }
                let slot = SLOT.0.get().cast::<u8>();
                let value = bytes.to_bytes_with_nul();
                // SAFETY: the slot holds NAME, '=', up to VALUE_CAPACITY bytes and the NUL.
                unsafe {
                    std::ptr::copy_nonoverlapping(NAME.as_ptr(), slot, NAME.len());
                    *slot.add(NAME.len()) = b'=';
                    std::ptr::copy_nonoverlapping(
                        value.as_ptr(),
                        slot.add(NAME.len() + 1),
                        value.len(),
                    );
                    // Stores the pointer (again); allocates nothing once the entry exists.
                    return libc::putenv(slot.cast::<c_char>());
                }
            }
        }
        match glibc_setenv() {
            // SAFETY: the caller's arguments, passed on unchanged.
            Some(real) => unsafe { real(name, value, overwrite) },
            None => {
                // SAFETY: errno is this thread's.
                unsafe { *libc::__errno_location() = libc::ENOMEM };
                -1
            }
        }
    }
}

/// Whether `setenv`, as this executable links it, is the replacement above; logs a warning when it
/// is not (on glibc). Call once at cold start, after logging is installed.
pub fn check_setenv_replaced() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let linked = libc::setenv as *const () as usize;
        let ours = glibc::setenv as *const () as usize;
        if linked != ours {
            tracing::warn!(
                "setenv is glibc's: every invocation's trace id will stay in memory (about 110 bytes each)"
            );
        }
        linked == ours
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::glibc::{NAME, VALUE_CAPACITY};

    fn heap_in_use() -> usize {
        // SAFETY: mallinfo2 only reads the allocator's counters.
        unsafe { libc::mallinfo2().uordblks }
    }

    fn trace_id(i: u64) -> String {
        format!(
            "Root=1-6745a1b2-{i:024x};Parent={:016x};Sampled=1;Lineage=1:a3b5c7d9:0",
            i * 7
        )
    }

    #[test]
    fn the_linked_setenv_is_the_replacement() {
        assert!(super::check_setenv_replaced());
    }

    // One test: the environment is process-wide.
    #[test]
    fn trace_ids_replace_each_other_without_leaking_and_other_names_still_work() {
        // Tests that allocate a lot wait: the heap is measured process-wide.
        let _quiet = crate::HEAP_QUIET.lock().unwrap_or_else(|p| p.into_inner());
        let name = std::str::from_utf8(NAME).unwrap();
        std::env::set_var(name, trace_id(0));
        let before = heap_in_use();
        for i in 1..=100_000 {
            std::env::set_var(name, trace_id(i));
        }
        let grown = heap_in_use().saturating_sub(before);
        // glibc's setenv would keep ~100,000 x 110 bytes (11 MB) here.
        assert!(grown < 256 * 1024, "heap grew by {grown} bytes");
        assert_eq!(std::env::var(name).unwrap(), trace_id(100_000));

        std::env::remove_var(name);
        assert!(std::env::var(name).is_err());
        std::env::set_var(name, "Root=1-short");
        assert_eq!(std::env::var(name).unwrap(), "Root=1-short");

        // Too long for the buffer: glibc's setenv, still correct.
        let long = "x".repeat(VALUE_CAPACITY + 1);
        std::env::set_var(name, &long);
        assert_eq!(std::env::var(name).unwrap(), long);
        std::env::set_var(name, "Root=1-back");
        assert_eq!(std::env::var(name).unwrap(), "Root=1-back");

        // Every other variable is glibc's business.
        std::env::set_var("TRACE_ENV_TEST_OTHER", "one");
        assert_eq!(std::env::var("TRACE_ENV_TEST_OTHER").unwrap(), "one");
        std::env::remove_var("TRACE_ENV_TEST_OTHER");
        assert!(std::env::var("TRACE_ENV_TEST_OTHER").is_err());
    }
}
