//! The one place where the project calls librados' C API directly.
//!
//! # Why
//!
//! The `ceph` crate (3.2) links librados and declares its whole C API, but its
//! safe `Rados`/`IoCtx` wrappers cannot set options between reading the
//! configuration file and connecting (`Rados::config_set` refuses once the
//! handle exists, and `connect_to_ceph` reads the file and connects in one
//! call), and they offer neither compound read/write operations nor omap
//! calls nor asynchronous completions. Gnocchi's layout needs all of these:
//! measures are omap entries of the sack objects, the split index is the omap
//! of each metric's `_none_v3` object. So this module wraps, once, the few C
//! calls we need behind a safe, owned interface:
//!
//! - [`Cluster`] (`rados_t`) and [`Pool`] (`rados_ioctx_t`): connection handles;
//! - [`WriteOp`] and [`ReadOp`]: plain Rust descriptions of a compound operation
//!   on one object (no pointers in them);
//! - [`Pool::write`] and [`Pool::read`]: run many operations on many objects
//!   **at once** (`rados_aio_*_op_operate`, one completion each) and wait for
//!   all of them. They block: callers run them on tokio's blocking pool.
//!
//! # Invariants the `unsafe` blocks rely on
//!
//! 1. Handles: a `rados_t` is created by `rados_create` and shut down exactly
//!    once in `Drop`; a `rados_ioctx_t` is destroyed exactly once, and keeps
//!    its cluster alive (the [`Pool`] holds an `Arc<Cluster>`). librados
//!    handles are thread-safe (its documentation: "the `rados_t` and
//!    `rados_ioctx_t` may be shared between threads"), hence `Send + Sync`.
//! 2. Inputs: every `char*` given to librados is a `CString` (no interior NUL,
//!    checked when built) or a slice pointer with its length; librados copies
//!    write inputs (`omap_set`, `write_full`, `rm_keys`) into the operation's
//!    buffers while the call runs, and we keep them alive until the operation
//!    completed anyway.
//! 3. Outputs: the out-parameters of a read operation (return codes, sizes,
//!    the read buffer, the omap iterator) live in a `Box` whose address does
//!    not change, and that box is only freed after the operation's completion
//!    was waited for ([`Pending`]'s `Drop` waits if it was not).
//! 4. The read buffer is a `Vec<u8>` of `len > 0` initialised bytes, and the
//!    read asks the OSD for `len` bytes: the OSD returns at most that many,
//!    which librados copies into the buffer, reporting how many in
//!    `bytes_read` (clamped to `len` before truncating, all the same). A
//!    read of length 0 would return the whole object into that buffer, so
//!    none is ever issued.
//! 5. An omap iterator is walked only after its operation completed
//!    successfully, and ended (`rados_omap_get_end`) exactly once; the
//!    key and value pointers it returns are copied before the next call.
#![allow(unsafe_code)]

use ceph::rados::{
    rados_aio_create_completion, rados_aio_get_return_value, rados_aio_read_op_operate,
    rados_aio_release, rados_aio_wait_for_complete, rados_aio_write_op_operate, rados_completion_t,
    rados_conf_read_file, rados_conf_set, rados_connect, rados_create, rados_create_read_op,
    rados_create_write_op, rados_ioctx_create, rados_ioctx_destroy, rados_ioctx_set_namespace,
    rados_ioctx_t, rados_omap_get_end, rados_omap_get_next, rados_omap_iter_t,
    rados_read_op_omap_get_vals, rados_read_op_read, rados_read_op_stat, rados_read_op_t,
    rados_release_read_op, rados_release_write_op, rados_shutdown, rados_t, rados_write_op_create,
    rados_write_op_omap_rm_keys, rados_write_op_omap_set, rados_write_op_remove, rados_write_op_t,
    rados_write_op_write_full,
};
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::ptr;
use std::sync::Arc;

/// librados' flags for compound operations (librados.h, `LIBRADOS_OPERATION_*`).
pub(crate) const BALANCE_READS: i32 = 1;
pub(crate) const SKIPRWLOCKS: i32 = 16;

/// A negative errno from librados, or a string that could not be passed to it.
#[derive(Debug, Clone)]
pub(crate) enum RadosError {
    Errno(i32),
    Nul(String),
}

impl RadosError {
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, RadosError::Errno(e) if *e == libc::ENOENT)
    }

    pub(crate) fn is_exists(&self) -> bool {
        matches!(self, RadosError::Errno(e) if *e == libc::EEXIST)
    }

    /// As an I/O error (errno and its text), to keep as an error's source.
    pub(crate) fn into_io(self) -> std::io::Error {
        match self {
            RadosError::Errno(e) => std::io::Error::from_raw_os_error(e),
            RadosError::Nul(s) => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{s:?} contains a NUL byte"),
            ),
        }
    }
}

fn check(ret: i32) -> Result<i32, RadosError> {
    if ret < 0 {
        Err(RadosError::Errno(-ret))
    } else {
        Ok(ret)
    }
}

fn cstring(s: &str) -> Result<CString, RadosError> {
    CString::new(s).map_err(|_| RadosError::Nul(s.to_string()))
}

/// A connection to a cluster (`rados_t`), shut down when dropped.
pub(crate) struct Cluster {
    handle: rados_t,
}

// SAFETY: invariant 1 — librados handles are thread-safe.
unsafe impl Send for Cluster {}
// SAFETY: invariant 1.
unsafe impl Sync for Cluster {}

impl Cluster {
    /// `rados_create(user)`, read `conffile`, set each option, connect.
    pub(crate) fn connect(
        user: Option<&str>,
        conffile: &str,
        options: &[(&str, String)],
    ) -> Result<Cluster, RadosError> {
        let user = user.map(cstring).transpose()?;
        let conffile = cstring(conffile)?;
        let options = options
            .iter()
            .map(|(k, v)| Ok((cstring(k)?, cstring(v)?)))
            .collect::<Result<Vec<_>, RadosError>>()?;
        let mut handle: rados_t = ptr::null_mut();
        // SAFETY: invariant 2; `handle` is an out-pointer to a local.
        check(unsafe {
            rados_create(
                &mut handle,
                user.as_ref().map_or(ptr::null(), |u| u.as_ptr()),
            )
        })?;
        // From here on `Drop` shuts the handle down, whatever fails next.
        let cluster = Cluster { handle };
        // SAFETY: invariants 1 and 2.
        check(unsafe { rados_conf_read_file(cluster.handle, conffile.as_ptr()) })?;
        for (k, v) in &options {
            // SAFETY: invariants 1 and 2.
            check(unsafe { rados_conf_set(cluster.handle, k.as_ptr(), v.as_ptr()) })?;
        }
        // SAFETY: invariant 1.
        check(unsafe { rados_connect(cluster.handle) })?;
        Ok(cluster)
    }

    /// An I/O context on `pool`.
    pub(crate) fn pool(self: &Arc<Cluster>, pool: &str) -> Result<Pool, RadosError> {
        let name = cstring(pool)?;
        let mut ioctx: rados_ioctx_t = ptr::null_mut();
        // SAFETY: invariants 1 and 2; `ioctx` is an out-pointer to a local.
        check(unsafe { rados_ioctx_create(self.handle, name.as_ptr(), &mut ioctx) })?;
        Ok(Pool {
            ioctx,
            _cluster: self.clone(),
        })
    }
}

impl Pool {
    /// Work in RADOS namespace `ns` of the pool (objects of other namespaces
    /// are invisible); used to keep tests apart in one pool.
    pub(crate) fn set_namespace(&mut self, ns: &str) -> Result<(), RadosError> {
        let ns = cstring(ns)?;
        // SAFETY: invariants 1 and 2 (librados copies the name); `&mut self`:
        // no operation of this context runs meanwhile.
        unsafe { rados_ioctx_set_namespace(self.ioctx, ns.as_ptr()) };
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: invariant 1 — created by rados_create, shut down once.
        unsafe { rados_shutdown(self.handle) }
    }
}

/// An I/O context on one pool (`rados_ioctx_t`); keeps its cluster alive.
pub(crate) struct Pool {
    ioctx: rados_ioctx_t,
    _cluster: Arc<Cluster>,
}

// SAFETY: invariant 1.
unsafe impl Send for Pool {}
// SAFETY: invariant 1.
unsafe impl Sync for Pool {}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: invariant 1 — destroyed once, before its cluster (field order
        // does not matter: the Arc is released after this body runs).
        unsafe { rados_ioctx_destroy(self.ioctx) }
    }
}

/// The steps of a compound write on one object, applied atomically by the OSD.
#[derive(Debug, Default)]
pub(crate) struct WriteOp {
    /// Create the object; `Some(true)`: fail with EEXIST if it exists.
    pub(crate) create: Option<bool>,
    pub(crate) write_full: Option<Vec<u8>>,
    pub(crate) omap_set: Vec<(String, Vec<u8>)>,
    pub(crate) omap_rm: Vec<String>,
    pub(crate) remove: bool,
    pub(crate) flags: i32,
}

/// The steps of a compound read on one object.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReadOp {
    /// Read omap entries after this key, with this prefix, at most this many.
    pub(crate) omap: Option<(String, String, u64)>,
    /// Stat the object and read its first `n` bytes (`Some(0)`: stat only).
    pub(crate) read: Option<usize>,
    pub(crate) flags: i32,
}

/// Omap entries, key and value, in key order.
pub(crate) type Omap = Vec<(String, Vec<u8>)>;

/// What a [`ReadOp`] returned.
#[derive(Debug, Default)]
pub(crate) struct ReadResult {
    pub(crate) omap: Omap,
    /// The object's size (with `read`).
    pub(crate) size: u64,
    /// Its modification time, in seconds (with `read`).
    pub(crate) mtime: i64,
    pub(crate) data: Vec<u8>,
}

/// Out-parameters of one read operation, at a fixed address (invariant 3).
struct ReadOut {
    iter: rados_omap_iter_t,
    omap_rval: i32,
    size: u64,
    mtime: libc::time_t,
    stat_rval: i32,
    buf: Vec<u8>,
    bytes_read: libc::size_t,
    read_rval: i32,
}

/// One operation in flight: its completion, its op handle and what must
/// outlive it. Dropping it waits for the completion first (invariant 3).
struct Pending {
    completion: rados_completion_t,
    op: Op,
    /// Kept alive until completion (invariants 2 and 3).
    _oid: CString,
    _inputs: Vec<CString>,
    out: Option<Box<ReadOut>>,
    waited: bool,
}

enum Op {
    Write(rados_write_op_t),
    Read(rados_read_op_t),
}

impl Pending {
    fn wait(&mut self) -> Result<(), RadosError> {
        // SAFETY: the completion was created by rados_aio_create_completion
        // and is released only in Drop.
        let ret = unsafe {
            rados_aio_wait_for_complete(self.completion);
            rados_aio_get_return_value(self.completion)
        };
        self.waited = true;
        check(ret).map(|_| ())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // SAFETY: invariant 3 — wait before freeing anything the OSD reply
        // may still write to; then release the completion, the iterator and
        // the op exactly once.
        unsafe {
            if !self.waited {
                rados_aio_wait_for_complete(self.completion);
            }
            rados_aio_release(self.completion);
            if let Some(out) = &self.out
                && !out.iter.is_null()
            {
                rados_omap_get_end(out.iter);
            }
            match self.op {
                Op::Write(op) => rados_release_write_op(op),
                Op::Read(op) => rados_release_read_op(op),
            }
        }
    }
}

fn new_completion() -> Result<rados_completion_t, RadosError> {
    let mut c: rados_completion_t = ptr::null_mut();
    // SAFETY: no callbacks, `c` is an out-pointer to a local.
    check(unsafe { rados_aio_create_completion(ptr::null_mut(), None, None, &mut c) })?;
    Ok(c)
}

/// Pointers to each string of `strings`, for the `char**` arguments.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|s| s.as_ptr()).collect()
}

impl Pool {
    /// Run every write operation at once; wait for all; one result each, in order.
    pub(crate) fn write(&self, ops: Vec<(String, WriteOp)>) -> Vec<Result<(), RadosError>> {
        let mut started: Vec<Result<Pending, RadosError>> = Vec::with_capacity(ops.len());
        for (oid, op) in ops {
            started.push(self.start_write(&oid, op));
        }
        started
            .into_iter()
            .map(|p| p.and_then(|mut p| p.wait()))
            .collect()
    }

    fn start_write(&self, oid: &str, w: WriteOp) -> Result<Pending, RadosError> {
        let oid = cstring(oid)?;
        let set_keys = w
            .omap_set
            .iter()
            .map(|(k, _)| cstring(k))
            .collect::<Result<Vec<_>, _>>()?;
        let rm_keys = w
            .omap_rm
            .iter()
            .map(|k| cstring(k))
            .collect::<Result<Vec<_>, _>>()?;
        let completion = new_completion()?;
        // SAFETY: a fresh op, released by Pending's Drop.
        let op = unsafe { rados_create_write_op() };
        let mut pending = Pending {
            completion,
            op: Op::Write(op),
            _oid: oid,
            _inputs: Vec::new(),
            out: None,
            waited: true, // nothing in flight until operate succeeds
        };
        let set_ptrs = pointers(&set_keys);
        let val_ptrs: Vec<*const c_char> = w
            .omap_set
            .iter()
            .map(|(_, v)| v.as_ptr().cast::<c_char>())
            .collect();
        let val_lens: Vec<libc::size_t> = w.omap_set.iter().map(|(_, v)| v.len()).collect();
        let rm_ptrs = pointers(&rm_keys);
        // SAFETY: invariant 2 — every pointer and length describes a live
        // buffer (the vectors above, `w`'s fields), copied by librados now.
        let ret = unsafe {
            if let Some(exclusive) = w.create {
                rados_write_op_create(op, i32::from(exclusive), ptr::null());
            }
            if !set_ptrs.is_empty() {
                rados_write_op_omap_set(
                    op,
                    set_ptrs.as_ptr(),
                    val_ptrs.as_ptr(),
                    val_lens.as_ptr(),
                    set_ptrs.len(),
                );
            }
            if !rm_ptrs.is_empty() {
                rados_write_op_omap_rm_keys(op, rm_ptrs.as_ptr(), rm_ptrs.len());
            }
            if let Some(data) = &w.write_full {
                rados_write_op_write_full(op, data.as_ptr().cast::<c_char>(), data.len());
            }
            if w.remove {
                rados_write_op_remove(op);
            }
            rados_aio_write_op_operate(
                op,
                self.ioctx,
                completion,
                pending._oid.as_ptr(),
                ptr::null_mut(),
                w.flags,
            )
        };
        check(ret)?;
        pending.waited = false;
        pending._inputs = set_keys;
        pending._inputs.extend(rm_keys);
        Ok(pending)
    }

    /// Run every read operation at once; wait for all; one result each, in order.
    pub(crate) fn read(&self, ops: Vec<(String, ReadOp)>) -> Vec<Result<ReadResult, RadosError>> {
        let mut started: Vec<Result<Pending, RadosError>> = Vec::with_capacity(ops.len());
        for (oid, op) in ops {
            started.push(self.start_read(&oid, op));
        }
        started
            .into_iter()
            .map(|p| p.and_then(finish_read))
            .collect()
    }

    fn start_read(&self, oid: &str, r: ReadOp) -> Result<Pending, RadosError> {
        let oid = cstring(oid)?;
        let mut inputs = Vec::new();
        if let Some((after, prefix, _)) = &r.omap {
            inputs.push(cstring(after)?);
            inputs.push(cstring(prefix)?);
        }
        let completion = new_completion()?;
        // SAFETY: a fresh op, released by Pending's Drop.
        let op = unsafe { rados_create_read_op() };
        let mut out = Box::new(ReadOut {
            iter: ptr::null_mut(),
            omap_rval: 0,
            size: 0,
            mtime: 0,
            stat_rval: 0,
            buf: vec![0; r.read.unwrap_or(0)],
            bytes_read: 0,
            read_rval: 0,
        });
        let mut pending = Pending {
            completion,
            op: Op::Read(op),
            _oid: oid,
            _inputs: Vec::new(),
            out: None,
            waited: true,
        };
        let o: &mut ReadOut = &mut out;
        // SAFETY: invariants 2 and 3 — the out-parameters point into the boxed
        // `ReadOut`, moved into `pending` (the box, not its contents) and
        // freed only after the completion was waited for.
        let ret = unsafe {
            if let (Some((_, _, max)), [after, prefix]) = (&r.omap, inputs.as_slice()) {
                rados_read_op_omap_get_vals(
                    op,
                    after.as_ptr(),
                    prefix.as_ptr(),
                    *max,
                    &mut o.iter,
                    &mut o.omap_rval,
                );
            }
            if r.read.is_some() {
                rados_read_op_stat(op, &mut o.size, &mut o.mtime, &mut o.stat_rval);
            }
            // Invariant 4: never a read of length 0 (that reads the whole object).
            if !o.buf.is_empty() {
                rados_read_op_read(
                    op,
                    0,
                    o.buf.len(),
                    o.buf.as_mut_ptr().cast::<c_char>(),
                    &mut o.bytes_read,
                    &mut o.read_rval,
                );
            }
            rados_aio_read_op_operate(op, self.ioctx, completion, pending._oid.as_ptr(), r.flags)
        };
        pending.out = Some(out);
        pending._inputs = inputs;
        check(ret)?;
        pending.waited = false;
        Ok(pending)
    }
}

fn finish_read(mut p: Pending) -> Result<ReadResult, RadosError> {
    p.wait()?;
    let Some(out) = p.out.as_mut() else {
        return Ok(ReadResult::default());
    };
    check(out.omap_rval)?;
    check(out.stat_rval)?;
    check(out.read_rval)?;
    let mut result = ReadResult {
        size: out.size,
        // time_t is i64 on the 64-bit Linux targets librados supports.
        mtime: out.mtime,
        ..Default::default()
    };
    if !out.iter.is_null() {
        loop {
            let mut key: *mut c_char = ptr::null_mut();
            let mut val: *mut c_char = ptr::null_mut();
            let mut len: libc::size_t = 0;
            // SAFETY: invariant 5 — the operation completed successfully; the
            // returned pointers stay valid until the next call, and are copied.
            let entry = unsafe {
                check(rados_omap_get_next(out.iter, &mut key, &mut val, &mut len))?;
                if key.is_null() {
                    None
                } else {
                    let k = CStr::from_ptr(key).to_string_lossy().into_owned();
                    let v = if val.is_null() || len == 0 {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(val.cast::<u8>(), len).to_vec()
                    };
                    Some((k, v))
                }
            };
            match entry {
                Some(e) => result.omap.push(e),
                None => break,
            }
        }
    }
    // Invariant 4.
    let n = out.bytes_read.min(out.buf.len());
    out.buf.truncate(n);
    result.data = std::mem::take(&mut out.buf);
    Ok(result)
}
