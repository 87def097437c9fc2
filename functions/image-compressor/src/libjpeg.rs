//! libjpeg's FFI in one place: the error manager (a fatal error unwinds out of the library with
//! its message; warnings that mean damage are remembered), the in-memory destination the encoder
//! writes to, and the text of a caught panic. Every call into the library runs under
//! `catch_unwind`, so a hostile file becomes an `ImageError`, never a crash.

use std::ffi::CStr;
use std::os::raw::c_int;

use mozjpeg_sys::{
    boolean, jpeg_common_struct, jpeg_compress_struct, jpeg_destination_mgr, jpeg_error_mgr,
};

/// The size of the chunk the encoder's output is collected in.
pub(crate) const CHUNK_BYTES: usize = 16 * 1024;

/// Output is collected in chunks: libjpeg fills `chunk`, and each full chunk is appended to `out`.
#[repr(C)]
pub(crate) struct VecDestination {
    /// Must stay the first field: libjpeg's `cinfo.dest` points at it, the callbacks at the whole.
    pub manager: jpeg_destination_mgr,
    pub chunk: [u8; CHUNK_BYTES],
    pub out: Vec<u8>,
}

pub(crate) unsafe extern "C-unwind" fn destination_init(cinfo: &mut jpeg_compress_struct) {
    // SAFETY: `cinfo.dest` was set to a live `VecDestination` by `encode::jpeg::encode_unchecked`.
    let dest = unsafe { &mut *cinfo.dest.cast::<VecDestination>() };
    dest.manager.next_output_byte = dest.chunk.as_mut_ptr();
    dest.manager.free_in_buffer = dest.chunk.len();
}

pub(crate) unsafe extern "C-unwind" fn destination_full(
    cinfo: &mut jpeg_compress_struct,
) -> boolean {
    // SAFETY: as above. libjpeg calls this only when the whole chunk is written.
    let dest = unsafe { &mut *cinfo.dest.cast::<VecDestination>() };
    dest.out.extend_from_slice(&dest.chunk);
    dest.manager.next_output_byte = dest.chunk.as_mut_ptr();
    dest.manager.free_in_buffer = dest.chunk.len();
    1
}

pub(crate) unsafe extern "C-unwind" fn destination_term(cinfo: &mut jpeg_compress_struct) {
    // SAFETY: as above; `free_in_buffer` bytes at the end of the chunk are unwritten.
    let dest = unsafe { &mut *cinfo.dest.cast::<VecDestination>() };
    let used = dest.chunk.len() - dest.manager.free_in_buffer;
    dest.out.extend_from_slice(&dest.chunk[..used]);
}

/// What the decoder patched over while decoding (libjpeg warns and carries on).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Damage {
    Truncated,
    Corrupt(&'static str),
}

thread_local! {
    pub(crate) static DAMAGE: std::cell::Cell<Option<Damage>> = const { std::cell::Cell::new(None) };
}

pub(crate) type MessageHandler = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, c_int);

pub(crate) fn error_manager(on_message: MessageHandler) -> jpeg_error_mgr {
    // SAFETY: `jpeg_std_error` only fills in the struct it is given.
    let mut manager: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut manager) };
    manager.error_exit = Some(fail);
    manager.emit_message = Some(on_message);
    manager
}

/// The message libjpeg is reporting, as its format string (parameters not filled in).
fn message_text(cinfo: &jpeg_common_struct) -> &'static str {
    // SAFETY: `err` is the error manager libjpeg is calling through; its message table is a static
    // array of `last_jpeg_message + 1` C strings.
    unsafe {
        let Some(err) = cinfo.err.as_ref() else {
            return "unknown libjpeg error";
        };
        let code = err.msg_code;
        if code <= 0 || code > err.last_jpeg_message || err.jpeg_message_table.is_null() {
            return "unknown libjpeg error";
        }
        let text = *err.jpeg_message_table.add(code as usize);
        if text.is_null() {
            return "unknown libjpeg error";
        }
        CStr::from_ptr(text.cast())
            .to_str()
            .unwrap_or("libjpeg error")
    }
}

/// libjpeg's fatal error: unwind out of the library with the message.
pub(crate) unsafe extern "C-unwind" fn fail(cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(message_text(cinfo).to_string()));
}

pub(crate) unsafe extern "C-unwind" fn ignore_message(
    _cinfo: &mut jpeg_common_struct,
    _level: c_int,
) {
}

/// Warnings (level -1) that mean the picture is damaged are remembered; the harmless ones that
/// real cameras and editors produce (stray bytes before a marker, odd scan parameters) are not.
pub(crate) unsafe extern "C-unwind" fn note_damage(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level >= 0 {
        return;
    }
    let text = message_text(cinfo);
    // A file cut short (maybe with an end marker added) runs out of data inside a scan.
    let damage = if text.starts_with("Premature end of JPEG file")
        || text.contains("premature end of data segment")
    {
        Some(Damage::Truncated)
    } else if (text.starts_with("Corrupt JPEG data") && !text.contains("extraneous bytes"))
        || text.starts_with("Inconsistent progression")
    {
        Some(Damage::Corrupt(text))
    } else {
        None
    };
    if let Some(damage) = damage {
        DAMAGE.with(|d| {
            if d.get().is_none() {
                d.set(Some(damage));
            }
        });
    }
}

pub(crate) fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the JPEG codec failed".into())
}
