//! The UEFI variable store (UEFI 2.10 §8.2), kept in one fixed byte buffer.
//!
//! After ExitBootServices the firmware heap is gone, so the store lives in a
//! buffer the caller takes from a static of the firmware image. The buffer
//! is always a valid *store image*, the same format that is written to disk
//! to persist non-volatile variables (only those are serialised).
//!
//! The image format (header, records, CRC, sealing) is in
//! [`image_format`]; this module holds the store operations over it.

#![forbid(unsafe_code)]

use core::fmt;

use platform::crc32::{Crc32Digest, crc32};
use uefi_raw::{Guid, Status};

/// EFI_VARIABLE_* attribute bits (UEFI 2.10 §8.2.1). Built with
/// `from_bits_retain`, so unknown bits are kept and can be rejected.
pub use uefi_raw::table::runtime::VariableAttributes as Attributes;

const ACCESS: Attributes = Attributes::BOOTSERVICE_ACCESS.union(Attributes::RUNTIME_ACCESS);
const AUTHENTICATED: Attributes = Attributes::AUTHENTICATED_WRITE_ACCESS
    .union(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS)
    .union(Attributes::ENHANCED_AUTHENTICATED_ACCESS);
const DEFINED: Attributes = Attributes::NON_VOLATILE
    .union(ACCESS)
    .union(Attributes::HARDWARE_ERROR_RECORD)
    .union(AUTHENTICATED)
    .union(Attributes::APPEND_WRITE);

mod image_format;

pub use image_format::{
    Corruption, FORMAT_VERSION, HEADER_SIZE, MAGIC, RECORD_HEADER_SIZE, image_generation,
    seal_image,
};
use image_format::{Record, Records, parse_record};

/// Longest name accepted, in bytes including the NUL (511 characters).
pub const MAX_NAME_SIZE: usize = 1024;
/// Upper bound on one variable's name plus data, whatever the buffer size;
/// large enough for a full dbx.
pub const MAX_VARIABLE_SIZE_CAP: usize = 64 * 1024;
/// The smallest buffer that holds one variable with a one-character name.
pub const MIN_STORE_SIZE: usize = HEADER_SIZE + RECORD_HEADER_SIZE + 4 + 1;

/// A failed variable operation; [`VarError::status`] gives the EFI status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarError {
    NotFound,
    BufferTooSmall {
        needed: usize,
    },
    EmptyName,
    /// Name bytes including the NUL.
    NameTooLong(usize),
    /// Name contains a NUL before its end.
    EmbeddedNul,
    InvalidAttributes(u32),
    AttributeMismatch {
        existing: u32,
        requested: u32,
    },
    /// After ExitBootServices only RUNTIME_ACCESS variables may be used.
    NotRuntimeAccessible(u32),
    /// Name plus data exceed the per-variable limit.
    TooLarge {
        size: usize,
        max: usize,
    },
    /// GetNextVariableName was given a name/GUID that is not a variable.
    UnknownPrevious,
    Unsupported(u32),
    OutOfResources {
        needed: usize,
        available: usize,
    },
    /// The buffer given for the store or an image is too small.
    StoreTooSmall {
        len: usize,
        needed: usize,
    },
    Corrupt(Corruption),
    /// The store has not been set up (or is busy with a re-entrant call).
    Unavailable,
}

impl VarError {
    pub fn status(&self) -> Status {
        match self {
            VarError::NotFound => Status::NOT_FOUND,
            VarError::BufferTooSmall { .. } | VarError::StoreTooSmall { .. } => {
                Status::BUFFER_TOO_SMALL
            }
            VarError::EmptyName
            | VarError::NameTooLong(_)
            | VarError::EmbeddedNul
            | VarError::InvalidAttributes(_)
            | VarError::AttributeMismatch { .. }
            | VarError::NotRuntimeAccessible(_)
            | VarError::TooLarge { .. }
            | VarError::UnknownPrevious => Status::INVALID_PARAMETER,
            VarError::Unsupported(_) | VarError::Unavailable => Status::UNSUPPORTED,
            VarError::OutOfResources { .. } => Status::OUT_OF_RESOURCES,
            VarError::Corrupt(_) => Status::VOLUME_CORRUPTED,
        }
    }
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarError::NotFound => f.write_str("variable not found"),
            VarError::BufferTooSmall { needed } => write!(f, "buffer too small, need {needed}"),
            VarError::EmptyName => f.write_str("empty variable name"),
            VarError::NameTooLong(n) => write!(f, "name of {n} bytes exceeds {MAX_NAME_SIZE}"),
            VarError::EmbeddedNul => f.write_str("NUL inside variable name"),
            VarError::InvalidAttributes(a) => write!(f, "invalid attributes {a:#x}"),
            VarError::AttributeMismatch {
                existing,
                requested,
            } => write!(
                f,
                "attributes {requested:#x} differ from the variable's {existing:#x}"
            ),
            VarError::NotRuntimeAccessible(a) => {
                write!(
                    f,
                    "attributes {a:#x} lack RUNTIME_ACCESS after ExitBootServices"
                )
            }
            VarError::TooLarge { size, max } => write!(f, "variable of {size} bytes exceeds {max}"),
            VarError::UnknownPrevious => f.write_str("previous name/GUID is not a variable"),
            VarError::Unsupported(a) => write!(f, "unsupported attributes {a:#x}"),
            VarError::OutOfResources { needed, available } => {
                write!(f, "store full: {needed} bytes needed, {available} free")
            }
            VarError::StoreTooSmall { len, needed } => {
                write!(f, "buffer of {len} bytes too small, need {needed}")
            }
            VarError::Corrupt(c) => write!(f, "corrupt variable store: {c}"),
            VarError::Unavailable => f.write_str("variable store unavailable"),
        }
    }
}

/// QueryVariableInfo figures (UEFI 2.10 §8.2.4), in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageInfo {
    /// Space for records (the buffer less the image header).
    pub maximum_storage: u64,
    /// Unused record space; each new variable also takes a 28-byte record
    /// header from it.
    pub remaining_storage: u64,
    /// Largest name (including NUL) plus data of one variable.
    pub maximum_variable_size: u64,
}

/// A variable as stored.
#[derive(Clone, Copy, Debug)]
pub struct VariableRef<'s> {
    pub attributes: Attributes,
    pub guid: Guid,
    /// UCS-2 little-endian name without the NUL.
    pub(super) name_bytes: &'s [u8],
    pub data: &'s [u8],
}

impl<'s> VariableRef<'s> {
    /// The name's UCS-2 code units, without the NUL.
    pub fn name(&self) -> impl Iterator<Item = u16> + 's {
        platform::le::u16_units(self.name_bytes)
    }

    /// Bytes the name occupies including its NUL, as GetNextVariableName
    /// reports it.
    pub fn name_size(&self) -> usize {
        self.name_bytes.len() + 2
    }

    pub fn name_is(&self, name: &[u16]) -> bool {
        self.name_bytes.len() == name.len() * 2 && self.name().eq(name.iter().copied())
    }
}

/// Checks a name given without its NUL; returns its stored size.
fn check_name(name: &[u16]) -> Result<usize, VarError> {
    if name.is_empty() {
        return Err(VarError::EmptyName);
    }
    if name.contains(&0) {
        return Err(VarError::EmbeddedNul);
    }
    let size = name
        .len()
        .checked_add(1)
        .and_then(|units| units.checked_mul(2))
        .unwrap_or(usize::MAX);
    if size > MAX_NAME_SIZE {
        return Err(VarError::NameTooLong(size));
    }
    Ok(size)
}

/// Attribute checks shared by SetVariable and QueryVariableInfo for a
/// request that has access bits (UEFI 2.10 §8.2.1 and §8.2.4).
fn check_attributes(attributes: Attributes, runtime: bool) -> Result<(), VarError> {
    let bits = attributes.bits();
    if !DEFINED.contains(attributes) {
        return Err(VarError::InvalidAttributes(bits));
    }
    // Runtime access implies boot service access (§8.2.1, usage rules).
    if attributes.contains(Attributes::RUNTIME_ACCESS)
        && !attributes.contains(Attributes::BOOTSERVICE_ACCESS)
    {
        return Err(VarError::InvalidAttributes(bits));
    }
    // The two authentication schemes exclude each other.
    if attributes.contains(
        Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS
            | Attributes::ENHANCED_AUTHENTICATED_ACCESS,
    ) {
        return Err(VarError::InvalidAttributes(bits));
    }
    // §8.2.1: AUTHENTICATED_WRITE_ACCESS is deprecated and platforms return
    // EFI_UNSUPPORTED for it. This store cannot verify the time-based or
    // enhanced payloads either; accepting them unverified would defeat their
    // purpose, so they are "not supported by this platform" (EFI_UNSUPPORTED)
    // and the variables Secure Boot needs cannot be created.
    if attributes.intersects(AUTHENTICATED) {
        return Err(VarError::Unsupported(bits));
    }
    // Hardware error records (§8.2.1, Appendix P) need their own storage
    // quota and HwErrRecSupport; not implemented.
    if attributes.contains(Attributes::HARDWARE_ERROR_RECORD) {
        return Err(VarError::Unsupported(bits));
    }
    if runtime && !attributes.contains(Attributes::RUNTIME_ACCESS) {
        return Err(VarError::NotRuntimeAccessible(bits));
    }
    Ok(())
}

/// The variable store over a caller-provided buffer.
pub struct VariableStore<'a> {
    buf: &'a mut [u8],
    /// Bytes of records after the header.
    used: usize,
    runtime: bool,
}

impl<'a> VariableStore<'a> {
    /// Formats `buf` as an empty store. Buffers beyond 4 GiB are used only
    /// up to the size the image's 32-bit `used` field can describe.
    pub fn new(buf: &'a mut [u8]) -> Result<Self, VarError> {
        if buf.len() < MIN_STORE_SIZE {
            return Err(VarError::StoreTooSmall {
                len: buf.len(),
                needed: MIN_STORE_SIZE,
            });
        }
        let limit = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
        let len = buf.len().min(limit);
        let buf = &mut buf[..len];
        buf.fill(0);
        let mut store = VariableStore {
            buf,
            used: 0,
            runtime: false,
        };
        store.commit();
        Ok(store)
    }

    fn capacity(&self) -> usize {
        self.buf.len() - HEADER_SIZE
    }

    fn records(&self) -> &[u8] {
        &self.buf[HEADER_SIZE..HEADER_SIZE + self.used]
    }

    fn iter_records(&self) -> Records<'_> {
        Records {
            records: self.records(),
            offset: 0,
        }
    }

    /// Rewrites the header (used length and CRC) after a change, so the
    /// buffer is a valid image at all times.
    fn commit(&mut self) {
        let used = u32::try_from(self.used).unwrap_or(u32::MAX);
        self.buf[0..8].copy_from_slice(&MAGIC);
        self.buf[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        self.buf[12..16].copy_from_slice(&used.to_le_bytes());
        self.buf[16..24].fill(0);
        let crc = crc32(&self.buf[..HEADER_SIZE + self.used]);
        self.buf[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    /// Switches to the runtime phase (after ExitBootServices, §8.2): from
    /// now on only RUNTIME_ACCESS variables are visible and settable.
    pub fn enter_runtime_phase(&mut self) {
        self.runtime = true;
    }

    pub fn runtime_phase(&self) -> bool {
        self.runtime
    }

    fn visible(&self, record: &Record) -> bool {
        !self.runtime || record.attributes.contains(Attributes::RUNTIME_ACCESS)
    }

    /// The record with this name and GUID, visible or not.
    fn find_record(&self, name: &[u16], guid: &Guid) -> Option<Record> {
        let records = self.records();
        self.iter_records()
            .find(|r| r.guid == *guid && r.view(records).name_is(name))
    }

    /// Name plus data limit for one variable.
    pub fn max_variable_size(&self) -> usize {
        MAX_VARIABLE_SIZE_CAP.min(self.capacity() - RECORD_HEADER_SIZE)
    }

    /// Looks a variable up; invisible variables (non-runtime ones in the
    /// runtime phase) are not found (§8.2.1 GetVariable).
    pub fn find(&self, name: &[u16], guid: &Guid) -> Option<VariableRef<'_>> {
        self.find_record(name, guid)
            .filter(|r| self.visible(r))
            .map(|r| r.view(self.records()))
    }

    /// GetVariable: copies the data into `out`, returning the attributes
    /// and data size.
    pub fn get(
        &self,
        name: &[u16],
        guid: &Guid,
        out: &mut [u8],
    ) -> Result<(Attributes, usize), VarError> {
        let variable = self.find(name, guid).ok_or(VarError::NotFound)?;
        let size = variable.data.len();
        let dest = out
            .get_mut(..size)
            .ok_or(VarError::BufferTooSmall { needed: size })?;
        dest.copy_from_slice(variable.data);
        Ok((variable.attributes, size))
    }

    /// GetNextVariableName (§8.2.2): the variable after `previous`, or the
    /// first one for `None` (the caller's empty name).
    pub fn next_variable(
        &self,
        previous: Option<(&[u16], &Guid)>,
    ) -> Result<VariableRef<'_>, VarError> {
        let records = self.records();
        let mut candidates = self.iter_records().filter(|r| self.visible(r));
        if let Some((name, guid)) = previous {
            candidates
                .by_ref()
                .find(|r| r.guid == *guid && r.view(records).name_is(name))
                .ok_or(VarError::UnknownPrevious)?;
        }
        candidates
            .next()
            .map(|r| r.view(records))
            .ok_or(VarError::NotFound)
    }

    /// SetVariable (§8.2.3): create, replace, append to or delete.
    ///
    /// Deletion is a zero-length write without APPEND_WRITE, or a write
    /// with no access attributes (§8.2.1: "Setting a data variable with no
    /// access attributes causes it to be deleted"). Hence no variable is
    /// ever stored without BOOTSERVICE_ACCESS, and a NON_VOLATILE request
    /// lacking it deletes rather than creates.
    pub fn set(
        &mut self,
        name: &[u16],
        guid: &Guid,
        attributes: Attributes,
        data: &[u8],
    ) -> Result<(), VarError> {
        // A time-based authenticated variable changes only with an
        // EFI_VARIABLE_AUTHENTICATION_2 payload (§8.2.1), which this store
        // cannot verify yet: neither written nor deleted from here.
        if self.find_record(name, guid).is_some_and(|existing| {
            existing
                .attributes
                .contains(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS)
        }) {
            return Err(VarError::Unsupported(attributes.bits()));
        }
        self.set_checked(name, guid, attributes, data, check_attributes)
    }

    /// SetVariable for a value the firmware itself vouches for, as the
    /// Secure Boot key variables the VMM handed over (`crate::secure_boot`):
    /// the same as [`set`](Self::set) but TIME_BASED_AUTHENTICATED_WRITE_ACCESS
    /// is accepted without an EFI_VARIABLE_AUTHENTICATION_2 header, since
    /// nobody but the firmware writes through here.
    pub fn set_authenticated_by_firmware(
        &mut self,
        name: &[u16],
        guid: &Guid,
        attributes: Attributes,
        data: &[u8],
    ) -> Result<(), VarError> {
        self.set_checked(name, guid, attributes, data, |attributes, runtime| {
            check_attributes(
                attributes - Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
                runtime,
            )
        })
    }

    fn set_checked(
        &mut self,
        name: &[u16],
        guid: &Guid,
        attributes: Attributes,
        data: &[u8],
        check: impl FnOnce(Attributes, bool) -> Result<(), VarError>,
    ) -> Result<(), VarError> {
        let name_size = check_name(name)?;
        let append = attributes.contains(Attributes::APPEND_WRITE);
        let stored_attributes = attributes - Attributes::APPEND_WRITE;
        if !DEFINED.contains(attributes) {
            return Err(VarError::InvalidAttributes(attributes.bits()));
        }
        let delete = !attributes.intersects(ACCESS) || (data.is_empty() && !append);
        if !delete {
            check(attributes, self.runtime)?;
        }
        let existing = self.find_record(name, guid);
        let Some(existing) = existing else {
            if delete {
                return Err(VarError::NotFound);
            }
            if data.is_empty() {
                // Appending nothing changes nothing (§8.2.3, DataSize).
                return Ok(());
            }
            return self.create(name, name_size, guid, stored_attributes, data);
        };

        if !self.visible(&existing) {
            if delete {
                return Err(VarError::NotFound);
            }
            return Err(VarError::AttributeMismatch {
                existing: existing.attributes.bits(),
                requested: attributes.bits(),
            });
        }
        // Attributes must match the variable's, except that a request
        // without access bits deletes it (§8.2.1 usage rules).
        let access_given = attributes.intersects(ACCESS);
        if access_given && stored_attributes != existing.attributes {
            return Err(VarError::AttributeMismatch {
                existing: existing.attributes.bits(),
                requested: attributes.bits(),
            });
        }
        if delete {
            self.remove(&existing);
            return Ok(());
        }
        let new_data_size = if append {
            existing.data_size.saturating_add(data.len())
        } else {
            data.len()
        };
        self.check_size(name_size, new_data_size)?;
        let grow = new_data_size.saturating_sub(existing.data_size);
        let available = self.capacity() - self.used;
        if grow > available {
            return Err(VarError::OutOfResources {
                needed: grow,
                available,
            });
        }
        let old_data_size = existing.data_size;
        let record = self.resize_data(&existing, new_data_size);
        let data_start = HEADER_SIZE + record.data_start();
        let dest_start = if append {
            data_start + old_data_size
        } else {
            data_start
        };
        self.buf[dest_start..dest_start + data.len()].copy_from_slice(data);
        self.commit();
        Ok(())
    }

    fn check_size(&self, name_size: usize, data_size: usize) -> Result<(), VarError> {
        let size = name_size.saturating_add(data_size);
        let max = self.max_variable_size();
        if size > max {
            return Err(VarError::TooLarge { size, max });
        }
        Ok(())
    }

    fn create(
        &mut self,
        name: &[u16],
        name_size: usize,
        guid: &Guid,
        attributes: Attributes,
        data: &[u8],
    ) -> Result<(), VarError> {
        self.check_size(name_size, data.len())?;
        let needed = RECORD_HEADER_SIZE + name_size + data.len();
        let available = self.capacity() - self.used;
        if needed > available {
            return Err(VarError::OutOfResources { needed, available });
        }
        let start = HEADER_SIZE + self.used;
        let record = &mut self.buf[start..start + needed];
        record[0..4].copy_from_slice(&attributes.bits().to_le_bytes());
        record[4..20].copy_from_slice(&guid.to_bytes());
        // Both sizes are below MAX_VARIABLE_SIZE_CAP, so they fit in u32.
        record[20..24].copy_from_slice(&(name_size as u32).to_le_bytes());
        record[24..28].copy_from_slice(&(data.len() as u32).to_le_bytes());
        let (name_bytes, data_bytes) = record[RECORD_HEADER_SIZE..].split_at_mut(name_size);
        for (dest, unit) in name_bytes.chunks_exact_mut(2).zip(name.iter().chain(&[0])) {
            dest.copy_from_slice(&unit.to_le_bytes());
        }
        data_bytes.copy_from_slice(data);
        self.used += needed;
        self.commit();
        Ok(())
    }

    /// Deletes a record, compacting the ones behind it and zeroing the
    /// freed tail.
    fn remove(&mut self, record: &Record) {
        let records = &mut self.buf[HEADER_SIZE..HEADER_SIZE + self.used];
        records.copy_within(record.end().., record.offset);
        let new_used = self.used - record.len();
        records[new_used..].fill(0);
        self.used = new_used;
        self.commit();
    }

    /// Moves the records behind `record` so its data region is
    /// `new_data_size` bytes; the caller checked the space. Returns the
    /// updated record (its data contents are stale or uninitialised).
    fn resize_data(&mut self, record: &Record, new_data_size: usize) -> Record {
        let old_end = record.end();
        let new_end = record.data_start() + new_data_size;
        let old_used = self.used;
        let new_used = old_used - old_end + new_end;
        let area = &mut self.buf[HEADER_SIZE..];
        area.copy_within(old_end..old_used, new_end);
        if new_used < old_used {
            area[new_used..old_used].fill(0);
        }
        let size_field = record.offset + 24;
        area[size_field..size_field + 4].copy_from_slice(&(new_data_size as u32).to_le_bytes());
        self.used = new_used;
        Record {
            data_size: new_data_size,
            ..*record
        }
    }

    /// QueryVariableInfo (§8.2.4). Volatile and non-volatile variables
    /// share the one buffer, so the figures are the same for both.
    ///
    /// The attributes choose the storage asked about. APPEND_WRITE only
    /// qualifies a write, and time-based authenticated variables live in
    /// this same store (`crate::secure_boot` verifies their writes), so
    /// neither bit changes the answer. Linux asks with exactly the
    /// attributes of the write it is about to make (efivarfs'
    /// `check_var_size`), so refusing them fails every authenticated append
    /// from the OS with EINVAL.
    pub fn query_info(&self, attributes: Attributes) -> Result<StorageInfo, VarError> {
        let storage = attributes
            - (Attributes::APPEND_WRITE | Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS);
        if !storage.intersects(ACCESS) {
            return Err(VarError::InvalidAttributes(attributes.bits()));
        }
        check_attributes(storage, self.runtime)?;
        Ok(StorageInfo {
            maximum_storage: self.capacity() as u64,
            remaining_storage: (self.capacity() - self.used) as u64,
            maximum_variable_size: self.max_variable_size() as u64,
        })
    }

    /// Every NON_VOLATILE variable, whatever the phase (for persistence).
    pub fn iter_non_volatile(&self) -> impl Iterator<Item = VariableRef<'_>> {
        let records = self.records();
        self.iter_records()
            .filter(|r| r.attributes.contains(Attributes::NON_VOLATILE))
            .map(move |r| r.view(records))
    }

    /// Size of the image [`serialise_non_volatile`](Self::serialise_non_volatile) writes.
    pub fn serialised_len(&self) -> usize {
        HEADER_SIZE
            + self
                .iter_records()
                .filter(|r| r.attributes.contains(Attributes::NON_VOLATILE))
                .map(|r| r.len())
                .sum::<usize>()
    }

    /// Writes a store image holding only the non-volatile variables into
    /// `out`; returns its length. Its generation is 0 (see [`seal_image`]).
    pub fn serialise_non_volatile(&self, out: &mut [u8]) -> Result<usize, VarError> {
        let len = self.serialised_len();
        let out_len = out.len();
        let image = out.get_mut(..len).ok_or(VarError::StoreTooSmall {
            len: out_len,
            needed: len,
        })?;
        let records = self.records();
        let mut at = HEADER_SIZE;
        for record in self.iter_records() {
            if record.attributes.contains(Attributes::NON_VOLATILE) {
                image[at..at + record.len()].copy_from_slice(&records[record.offset..record.end()]);
                at += record.len();
            }
        }
        image[0..8].copy_from_slice(&MAGIC);
        image[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        image[12..16].copy_from_slice(&((len - HEADER_SIZE) as u32).to_le_bytes());
        image[16..24].fill(0);
        let crc = crc32(image);
        image[16..20].copy_from_slice(&crc.to_le_bytes());
        Ok(len)
    }

    /// Replaces the store's contents with a store image (from disk). The
    /// image is fully checked first; on error the store is left unchanged
    /// and the caller carries on with it (empty, at boot) after a warning.
    /// Returns the number of variables loaded.
    pub fn load(&mut self, image: &[u8]) -> Result<usize, VarError> {
        let (records, count) = self.check_image(image)?;
        let len = records.len();
        self.buf[HEADER_SIZE..HEADER_SIZE + len].copy_from_slice(records);
        if len < self.used {
            self.buf[HEADER_SIZE + len..HEADER_SIZE + self.used].fill(0);
        }
        self.used = len;
        self.commit();
        Ok(count)
    }

    /// The non-volatile variables as a freshly allocated image (generation 0),
    /// for the persistence hook.
    pub fn non_volatile_image(&self) -> alloc::vec::Vec<u8> {
        let mut image = alloc::vec![0u8; self.serialised_len()];
        // Cannot fail: the buffer has exactly the serialised length.
        let _ = self.serialise_non_volatile(&mut image);
        image
    }

    fn check_image<'i>(&self, image: &'i [u8]) -> Result<(&'i [u8], usize), VarError> {
        let corrupt = VarError::Corrupt;
        let header = image
            .get(..HEADER_SIZE)
            .ok_or(corrupt(Corruption::Truncated {
                len: image.len(),
                needed: HEADER_SIZE,
            }))?;
        let magic: [u8; 8] = header[0..8].try_into().unwrap_or_default();
        if magic != MAGIC {
            return Err(corrupt(Corruption::BadMagic(magic)));
        }
        let version = platform::le::u32_at(header, 8).unwrap_or(0);
        if version != FORMAT_VERSION {
            return Err(corrupt(Corruption::BadVersion(version)));
        }
        let used = platform::le::u32_at(header, 12).unwrap_or(0) as usize;
        let total = HEADER_SIZE.saturating_add(used);
        let whole = image.get(..total).ok_or(corrupt(Corruption::Truncated {
            len: image.len(),
            needed: total,
        }))?;
        let stored = platform::le::u32_at(header, 16).unwrap_or(0);
        let mut digest = Crc32Digest::new();
        digest.update(&header[..16]);
        digest.update(&[0; 4]);
        digest.update(&header[20..]);
        digest.update(&whole[HEADER_SIZE..]);
        let computed = digest.finalize();
        if stored != computed {
            return Err(corrupt(Corruption::BadCrc { stored, computed }));
        }
        if used > self.capacity() {
            return Err(VarError::StoreTooSmall {
                len: self.buf.len(),
                needed: total,
            });
        }
        let records = &whole[HEADER_SIZE..];
        let mut offset = 0;
        let mut count = 0;
        while offset < records.len() {
            let bad = corrupt(Corruption::BadRecord { offset });
            let record = parse_record(records, offset).ok_or(bad)?;
            let view = record.view(records);
            let name: &[u8] = &records[offset + RECORD_HEADER_SIZE..][..record.name_size];
            let well_formed = record.name_size.is_multiple_of(2)
                && record.name_size >= 4
                && record.name_size <= MAX_NAME_SIZE
                && name.ends_with(&[0, 0])
                && view.name().all(|unit| unit != 0)
                && record.data_size > 0
                && record.name_size + record.data_size <= self.max_variable_size()
                && record.attributes.intersects(ACCESS)
                && !record.attributes.contains(Attributes::APPEND_WRITE)
                // Time-based authenticated records are the firmware's own
                // (`set_authenticated_by_firmware`); `crate::secure_boot`
                // replaces the key variables after every load.
                && check_attributes(
                    record.attributes - Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
                    false,
                )
                .is_ok();
            if !well_formed {
                return Err(bad);
            }
            let duplicate = Records { records, offset: 0 }
                .take_while(|earlier| earlier.offset < offset)
                .any(|earlier| {
                    earlier.guid == record.guid
                        && earlier.view(records).name_bytes == view.name_bytes
                });
            if duplicate {
                return Err(corrupt(Corruption::Duplicate { offset }));
            }
            offset = record.end();
            count += 1;
        }
        Ok((records, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uefi_raw::guid;
    use uefi_raw::table::runtime::VariableVendor;

    const VENDOR: Guid = VariableVendor::GLOBAL_VARIABLE.0;
    const OTHER: Guid = guid!("00000001-0002-0003-0405-060708090a0b");
    const BS: Attributes = Attributes::BOOTSERVICE_ACCESS;
    const BS_RT: Attributes = Attributes::BOOTSERVICE_ACCESS.union(Attributes::RUNTIME_ACCESS);
    const NV_BS_RT: Attributes = BS_RT.union(Attributes::NON_VOLATILE);

    fn ucs2(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn store(buf: &mut [u8]) -> VariableStore<'_> {
        VariableStore::new(buf).unwrap()
    }

    fn get_vec(
        store: &VariableStore<'_>,
        name: &str,
        guid: &Guid,
    ) -> Result<(Attributes, Vec<u8>), VarError> {
        let mut out = [0u8; 256];
        let (attributes, size) = store.get(&ucs2(name), guid, &mut out)?;
        Ok((attributes, out[..size].to_vec()))
    }

    fn names(store: &VariableStore<'_>) -> Vec<(String, Guid)> {
        let mut result = Vec::new();
        let mut previous: Option<(Vec<u16>, Guid)> = None;
        loop {
            let prev = previous.as_ref().map(|(n, g)| (n.as_slice(), g));
            match store.next_variable(prev) {
                Ok(v) => {
                    let name: Vec<u16> = v.name().collect();
                    result.push((String::from_utf16(&name).unwrap(), v.guid));
                    previous = Some((name, v.guid));
                }
                Err(VarError::NotFound) => return result,
                Err(e) => panic!("iteration failed: {e}"),
            }
        }
    }

    /// The Secure Boot key variables: written by the firmware with the
    /// time-based authenticated attribute, kept by a store image (the
    /// stop before this refused the whole `vars.bin` as corrupt), and
    /// neither changed nor deleted through the callers' path.
    #[test]
    fn firmware_authenticated_variables_persist_and_callers_cannot_touch_them() {
        const AT: Attributes = NV_BS_RT.union(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS);
        let db = ucs2("db");
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        assert_eq!(
            s.set(&db, &OTHER, AT, &[1, 2, 3]),
            Err(VarError::Unsupported(AT.bits()))
        );
        s.set_authenticated_by_firmware(&db, &OTHER, AT, &[1, 2, 3])
            .unwrap();
        let image = s.non_volatile_image();
        let mut buf2 = vec![0u8; 4096];
        let mut loaded = store(&mut buf2);
        assert_eq!(loaded.load(&image), Ok(1));
        assert_eq!(get_vec(&loaded, "db", &OTHER), Ok((AT, vec![1, 2, 3])));
        for (attributes, data) in [
            (AT, &[4u8][..]),
            (NV_BS_RT, &[4]),
            (Attributes::empty(), &[]),
            (AT, &[]),
        ] {
            assert!(loaded.set(&db, &OTHER, attributes, data).is_err());
        }
        assert_eq!(get_vec(&loaded, "db", &OTHER), Ok((AT, vec![1, 2, 3])));
        loaded
            .set_authenticated_by_firmware(&db, &OTHER, Attributes::empty(), &[])
            .unwrap();
        assert_eq!(get_vec(&loaded, "db", &OTHER), Err(VarError::NotFound));
    }

    #[test]
    fn set_get_replace_delete() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        let name = ucs2("BootOrder");
        assert_eq!(s.get(&name, &VENDOR, &mut []), Err(VarError::NotFound));
        s.set(&name, &VENDOR, NV_BS_RT, &[1, 0, 2, 0]).unwrap();
        assert_eq!(
            get_vec(&s, "BootOrder", &VENDOR),
            Ok((NV_BS_RT, vec![1, 0, 2, 0]))
        );
        // Same name, other GUID: a different variable.
        assert_eq!(get_vec(&s, "BootOrder", &OTHER), Err(VarError::NotFound));
        assert_eq!(get_vec(&s, "Bootorder", &VENDOR), Err(VarError::NotFound));

        s.set(&name, &VENDOR, NV_BS_RT, &[9; 10]).unwrap();
        assert_eq!(get_vec(&s, "BootOrder", &VENDOR).unwrap().1, vec![9; 10]);
        s.set(&name, &VENDOR, NV_BS_RT, &[7]).unwrap();
        assert_eq!(get_vec(&s, "BootOrder", &VENDOR).unwrap().1, vec![7]);

        // Delete by size zero, then by attributes zero.
        s.set(&name, &VENDOR, NV_BS_RT, &[]).unwrap();
        assert_eq!(get_vec(&s, "BootOrder", &VENDOR), Err(VarError::NotFound));
        assert_eq!(
            s.set(&name, &VENDOR, NV_BS_RT, &[]),
            Err(VarError::NotFound)
        );
        s.set(&name, &VENDOR, BS, &[1]).unwrap();
        s.set(&name, &VENDOR, Attributes::empty(), &[1, 2]).unwrap();
        assert_eq!(get_vec(&s, "BootOrder", &VENDOR), Err(VarError::NotFound));
        assert_eq!(
            s.set(&name, &VENDOR, Attributes::empty(), &[]),
            Err(VarError::NotFound)
        );
        // Access-less attributes delete too (§8.2.1), so NV without BS
        // never creates a variable.
        s.set(&name, &VENDOR, BS, &[1]).unwrap();
        s.set(&name, &VENDOR, Attributes::NON_VOLATILE, &[5])
            .unwrap();
        assert_eq!(get_vec(&s, "BootOrder", &VENDOR), Err(VarError::NotFound));
        assert_eq!(
            s.set(&name, &VENDOR, Attributes::NON_VOLATILE, &[5]),
            Err(VarError::NotFound)
        );
        assert_eq!(s.used, 0);
    }

    #[test]
    fn buffer_too_small_reports_size() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        s.set(&ucs2("X"), &VENDOR, BS, &[1, 2, 3]).unwrap();
        let mut out = [0u8; 2];
        let err = s.get(&ucs2("X"), &VENDOR, &mut out).unwrap_err();
        assert_eq!(err, VarError::BufferTooSmall { needed: 3 });
        assert_eq!(err.status(), Status::BUFFER_TOO_SMALL);
        let mut out = [0u8; 3];
        assert_eq!(s.get(&ucs2("X"), &VENDOR, &mut out), Ok((BS, 3)));
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn deletion_compacts_and_keeps_neighbours() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        for (i, n) in ["A", "B", "C"].iter().enumerate() {
            s.set(&ucs2(n), &VENDOR, BS, &[i as u8; 5]).unwrap();
        }
        let used = s.used;
        s.set(&ucs2("B"), &VENDOR, BS, &[]).unwrap();
        assert_eq!(s.used, used - (RECORD_HEADER_SIZE + 4 + 5));
        assert_eq!(get_vec(&s, "A", &VENDOR).unwrap().1, vec![0; 5]);
        assert_eq!(get_vec(&s, "C", &VENDOR).unwrap().1, vec![2; 5]);
        // Growing the first variable moves the one behind it intact.
        s.set(&ucs2("A"), &VENDOR, BS, &[8; 40]).unwrap();
        assert_eq!(get_vec(&s, "C", &VENDOR).unwrap().1, vec![2; 5]);
        let names: Vec<String> = names(&s).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["A", "C"]);
    }

    #[test]
    fn append_write() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        let name = ucs2("db");
        let append = BS_RT | Attributes::APPEND_WRITE;
        // Appending nothing to nothing changes nothing.
        s.set(&name, &VENDOR, append, &[]).unwrap();
        assert_eq!(get_vec(&s, "db", &VENDOR), Err(VarError::NotFound));
        // Appending creates, then extends.
        s.set(&name, &VENDOR, append, &[1, 2]).unwrap();
        s.set(&ucs2("after"), &VENDOR, BS, &[0xaa]).unwrap();
        s.set(&name, &VENDOR, append, &[3]).unwrap();
        assert_eq!(get_vec(&s, "db", &VENDOR), Ok((BS_RT, vec![1, 2, 3])));
        assert_eq!(get_vec(&s, "after", &VENDOR).unwrap().1, vec![0xaa]);
        // Appending zero bytes keeps the variable.
        s.set(&name, &VENDOR, append, &[]).unwrap();
        assert_eq!(get_vec(&s, "db", &VENDOR).unwrap().1, vec![1, 2, 3]);
        // Attributes must still match.
        assert_eq!(
            s.set(&name, &VENDOR, BS | Attributes::APPEND_WRITE, &[4]),
            Err(VarError::AttributeMismatch {
                existing: BS_RT.bits(),
                requested: (BS | Attributes::APPEND_WRITE).bits()
            })
        );
    }

    #[test]
    fn attribute_rules() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        let name = ucs2("V");
        let invalid = |a: Attributes| VarError::InvalidAttributes(a.bits());
        // RUNTIME_ACCESS requires BOOTSERVICE_ACCESS.
        let rt = Attributes::RUNTIME_ACCESS;
        assert_eq!(s.set(&name, &VENDOR, rt, &[1]), Err(invalid(rt)));
        let nv_rt = rt | Attributes::NON_VOLATILE;
        assert_eq!(s.set(&name, &VENDOR, nv_rt, &[1]), Err(invalid(nv_rt)));
        // Undefined bits.
        let bad = BS | Attributes::from_bits_retain(0x100);
        assert_eq!(s.set(&name, &VENDOR, bad, &[1]), Err(invalid(bad)));
        assert_eq!(invalid(bad).status(), Status::INVALID_PARAMETER);
        // Authenticated variables and hardware error records: unsupported.
        for extra in [
            Attributes::AUTHENTICATED_WRITE_ACCESS,
            Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
            Attributes::ENHANCED_AUTHENTICATED_ACCESS,
        ] {
            let a = NV_BS_RT | extra;
            let err = s.set(&name, &VENDOR, a, &[1]).unwrap_err();
            assert_eq!(err, VarError::Unsupported(a.bits()));
            assert_eq!(err.status(), Status::UNSUPPORTED);
        }
        let both = BS
            | Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS
            | Attributes::ENHANCED_AUTHENTICATED_ACCESS;
        assert_eq!(s.set(&name, &VENDOR, both, &[1]), Err(invalid(both)));
        let hr = NV_BS_RT | Attributes::HARDWARE_ERROR_RECORD;
        assert_eq!(
            s.set(&name, &VENDOR, hr, &[1]),
            Err(VarError::Unsupported(hr.bits()))
        );
        // Existing variable: attributes must match.
        s.set(&name, &VENDOR, BS, &[1]).unwrap();
        let err = s.set(&name, &VENDOR, BS_RT, &[2]).unwrap_err();
        assert_eq!(
            err,
            VarError::AttributeMismatch {
                existing: BS.bits(),
                requested: BS_RT.bits()
            }
        );
        assert_eq!(err.status(), Status::INVALID_PARAMETER);
        assert_eq!(
            s.set(&name, &VENDOR, BS_RT, &[]),
            Err(VarError::AttributeMismatch {
                existing: BS.bits(),
                requested: BS_RT.bits()
            })
        );
        assert_eq!(get_vec(&s, "V", &VENDOR).unwrap().1, vec![1]);
    }

    #[test]
    fn name_rules() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        let err = s.set(&[], &VENDOR, BS, &[1]).unwrap_err();
        assert_eq!(err, VarError::EmptyName);
        assert_eq!(err.status(), Status::INVALID_PARAMETER);
        assert_eq!(s.set(&[], &VENDOR, BS, &[]), Err(VarError::EmptyName));
        assert_eq!(
            s.set(&[0x41, 0, 0x42], &VENDOR, BS, &[1]),
            Err(VarError::EmbeddedNul)
        );
        let longest = vec![0x41u16; MAX_NAME_SIZE / 2 - 1];
        s.set(&longest, &VENDOR, BS, &[1]).unwrap();
        let too_long = vec![0x41u16; MAX_NAME_SIZE / 2];
        assert_eq!(
            s.set(&too_long, &VENDOR, BS, &[1]),
            Err(VarError::NameTooLong(MAX_NAME_SIZE + 2))
        );
    }

    #[test]
    fn store_full_and_size_limits() {
        let mut buf = vec![0u8; 256];
        let mut s = store(&mut buf);
        let info = s.query_info(BS).unwrap();
        assert_eq!(info.maximum_storage, 256 - HEADER_SIZE as u64);
        assert_eq!(info.remaining_storage, info.maximum_storage);
        assert_eq!(
            info.maximum_variable_size,
            (256 - HEADER_SIZE - RECORD_HEADER_SIZE) as u64
        );
        // One byte more than the per-variable limit is a parameter error.
        let max = info.maximum_variable_size as usize;
        let err = s
            .set(&ucs2("A"), &VENDOR, BS, &vec![0; max - 4 + 1])
            .unwrap_err();
        assert_eq!(err, VarError::TooLarge { size: max + 1, max });
        assert_eq!(err.status(), Status::INVALID_PARAMETER);
        // Exactly the limit fills the store.
        s.set(&ucs2("A"), &VENDOR, BS, &vec![1; max - 4]).unwrap();
        assert_eq!(s.query_info(BS).unwrap().remaining_storage, 0);
        let err = s.set(&ucs2("B"), &VENDOR, BS, &[1]).unwrap_err();
        assert_eq!(
            err,
            VarError::OutOfResources {
                needed: RECORD_HEADER_SIZE + 4 + 1,
                available: 0
            }
        );
        assert_eq!(err.status(), Status::OUT_OF_RESOURCES);
        // A failed grow leaves the variable as it was.
        s.set(&ucs2("A"), &VENDOR, BS, &[2; 10]).unwrap();
        s.set(&ucs2("B"), &VENDOR, BS, &[3; 100]).unwrap();
        let free = s.query_info(BS).unwrap().remaining_storage as usize;
        let err = s
            .set(&ucs2("A"), &VENDOR, BS, &vec![4; 10 + free + 1])
            .unwrap_err();
        assert_eq!(err.status(), Status::OUT_OF_RESOURCES);
        let append = BS | Attributes::APPEND_WRITE;
        let err = s
            .set(&ucs2("A"), &VENDOR, append, &vec![4; free + 1])
            .unwrap_err();
        assert_eq!(err.status(), Status::OUT_OF_RESOURCES);
        assert_eq!(get_vec(&s, "A", &VENDOR).unwrap().1, vec![2; 10]);
        assert_eq!(get_vec(&s, "B", &VENDOR).unwrap().1, vec![3; 100]);
        s.set(&ucs2("A"), &VENDOR, append, &vec![4; free]).unwrap();
        assert_eq!(s.query_info(BS).unwrap().remaining_storage, 0);
        // Deleting frees the space again.
        s.set(&ucs2("A"), &VENDOR, BS, &[]).unwrap();
        assert_eq!(
            s.query_info(BS).unwrap().remaining_storage as usize,
            256 - HEADER_SIZE - (RECORD_HEADER_SIZE + 4 + 100)
        );
    }

    #[test]
    fn large_buffer_caps_variable_size() {
        let mut buf = vec![0u8; 128 * 1024];
        let s = store(&mut buf);
        let info = s.query_info(NV_BS_RT).unwrap();
        assert_eq!(info.maximum_variable_size, MAX_VARIABLE_SIZE_CAP as u64);
        assert_eq!(info.maximum_storage, (128 * 1024 - HEADER_SIZE) as u64);
    }

    #[test]
    fn query_info_attribute_checks() {
        let mut buf = vec![0u8; 1024];
        let mut s = store(&mut buf);
        let status = |s: &VariableStore<'_>, a: Attributes| s.query_info(a).unwrap_err().status();
        assert_eq!(status(&s, Attributes::empty()), Status::INVALID_PARAMETER);
        assert_eq!(
            status(&s, Attributes::NON_VOLATILE),
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            status(&s, Attributes::RUNTIME_ACCESS),
            Status::INVALID_PARAMETER
        );
        assert_eq!(
            status(&s, Attributes::APPEND_WRITE),
            Status::INVALID_PARAMETER
        );
        // What Linux asks before an authenticated append to db.
        let db_append =
            NV_BS_RT | Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS | Attributes::APPEND_WRITE;
        assert!(s.query_info(db_append).is_ok());
        assert!(s.query_info(BS | Attributes::APPEND_WRITE).is_ok());
        assert_eq!(
            status(&s, NV_BS_RT | Attributes::HARDWARE_ERROR_RECORD),
            Status::UNSUPPORTED
        );
        assert_eq!(
            status(&s, BS | Attributes::AUTHENTICATED_WRITE_ACCESS),
            Status::UNSUPPORTED
        );
        assert!(s.query_info(BS).is_ok());
        s.enter_runtime_phase();
        assert_eq!(status(&s, BS), Status::INVALID_PARAMETER);
        assert!(s.query_info(NV_BS_RT).is_ok());
    }

    #[test]
    fn iteration_protocol() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        assert_eq!(s.next_variable(None).unwrap_err(), VarError::NotFound);
        s.set(&ucs2("Boot0000"), &VENDOR, NV_BS_RT, &[1]).unwrap();
        s.set(&ucs2("Boot0000"), &OTHER, BS, &[2]).unwrap();
        s.set(&ucs2("Lang"), &VENDOR, BS_RT, &[3]).unwrap();
        assert_eq!(
            names(&s),
            [
                ("Boot0000".to_string(), VENDOR),
                ("Boot0000".to_string(), OTHER),
                ("Lang".to_string(), VENDOR)
            ]
        );
        let v = s.next_variable(None).unwrap();
        assert_eq!(v.name_size(), 18);
        // An unknown previous name or GUID is a parameter error.
        let err = s.next_variable(Some((&ucs2("Nope"), &VENDOR))).unwrap_err();
        assert_eq!(err, VarError::UnknownPrevious);
        assert_eq!(err.status(), Status::INVALID_PARAMETER);
        let err = s.next_variable(Some((&ucs2("Lang"), &OTHER))).unwrap_err();
        assert_eq!(err.status(), Status::INVALID_PARAMETER);
        // The last one yields NOT_FOUND.
        let err = s.next_variable(Some((&ucs2("Lang"), &VENDOR))).unwrap_err();
        assert_eq!(err.status(), Status::NOT_FOUND);
    }

    #[test]
    fn runtime_phase_visibility() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        s.set(
            &ucs2("BootOnly"),
            &VENDOR,
            Attributes::NON_VOLATILE | BS,
            &[1],
        )
        .unwrap();
        s.set(&ucs2("Shared"), &VENDOR, NV_BS_RT, &[2]).unwrap();
        s.enter_runtime_phase();
        assert!(s.runtime_phase());
        assert_eq!(get_vec(&s, "BootOnly", &VENDOR), Err(VarError::NotFound));
        assert_eq!(get_vec(&s, "Shared", &VENDOR).unwrap().1, vec![2]);
        assert_eq!(names(&s), [("Shared".to_string(), VENDOR)]);
        // A hidden variable cannot be named as the previous one either.
        assert_eq!(
            s.next_variable(Some((&ucs2("BootOnly"), &VENDOR)))
                .unwrap_err(),
            VarError::UnknownPrevious
        );
        // Only RUNTIME_ACCESS variables can be set.
        let err = s.set(&ucs2("New"), &VENDOR, BS, &[1]).unwrap_err();
        assert_eq!(err, VarError::NotRuntimeAccessible(BS.bits()));
        assert_eq!(err.status(), Status::INVALID_PARAMETER);
        s.set(&ucs2("New"), &VENDOR, BS_RT, &[1]).unwrap();
        // Hidden variables cannot be deleted or overwritten.
        assert_eq!(
            s.set(&ucs2("BootOnly"), &VENDOR, Attributes::empty(), &[]),
            Err(VarError::NotFound)
        );
        assert_eq!(
            s.set(&ucs2("BootOnly"), &VENDOR, NV_BS_RT, &[5])
                .unwrap_err()
                .status(),
            Status::INVALID_PARAMETER
        );
        // ...but still persist.
        let persisted: Vec<Vec<u16>> = s.iter_non_volatile().map(|v| v.name().collect()).collect();
        assert_eq!(persisted, [ucs2("BootOnly"), ucs2("Shared")]);
        s.set(&ucs2("Shared"), &VENDOR, NV_BS_RT, &[]).unwrap();
        assert_eq!(get_vec(&s, "Shared", &VENDOR), Err(VarError::NotFound));
    }

    #[test]
    fn serialise_load_round_trip() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        s.set(&ucs2("Boot0001"), &VENDOR, NV_BS_RT, &[1, 2, 3])
            .unwrap();
        s.set(&ucs2("Volatile"), &VENDOR, BS, &[4]).unwrap();
        s.set(
            &ucs2("Boot0002"),
            &OTHER,
            Attributes::NON_VOLATILE | BS,
            &[5; 300],
        )
        .unwrap();
        let mut image = vec![0u8; s.serialised_len()];
        assert_eq!(
            s.serialise_non_volatile(&mut image[..10]),
            Err(VarError::StoreTooSmall {
                len: 10,
                needed: image.len()
            })
        );
        assert_eq!(s.serialise_non_volatile(&mut image), Ok(image.len()));
        assert_eq!(&image[..8], b"VMFWVAR\0");
        assert_eq!(
            image.len(),
            HEADER_SIZE + 2 * RECORD_HEADER_SIZE + 18 * 2 + 3 + 300
        );

        let mut buf2 = vec![0u8; 2048];
        let mut t = store(&mut buf2);
        t.set(&ucs2("Stale"), &VENDOR, BS, &[9]).unwrap();
        assert_eq!(t.load(&image), Ok(2));
        assert_eq!(
            get_vec(&t, "Boot0001", &VENDOR),
            Ok((NV_BS_RT, vec![1, 2, 3]))
        );
        let mut big = [0u8; 300];
        assert_eq!(
            t.get(&ucs2("Boot0002"), &OTHER, &mut big),
            Ok((Attributes::NON_VOLATILE | BS, 300))
        );
        assert_eq!(big, [5; 300]);
        assert_eq!(get_vec(&t, "Volatile", &VENDOR), Err(VarError::NotFound));
        assert_eq!(get_vec(&t, "Stale", &VENDOR), Err(VarError::NotFound));
        // The live buffer is itself a valid image.
        let mut buf3 = vec![0u8; 2048];
        let mut u = store(&mut buf3);
        assert_eq!(u.load(&buf2), Ok(2));
        assert_eq!(u.set(&ucs2("Boot0001"), &VENDOR, NV_BS_RT, &[]), Ok(()));
    }

    fn sample_image() -> Vec<u8> {
        let mut buf = vec![0u8; 1024];
        let mut s = store(&mut buf);
        s.set(&ucs2("A"), &VENDOR, NV_BS_RT, &[1, 2]).unwrap();
        s.set(&ucs2("B"), &VENDOR, NV_BS_RT, &[3]).unwrap();
        let mut image = vec![0u8; s.serialised_len()];
        s.serialise_non_volatile(&mut image).unwrap();
        image
    }

    /// Rewrites the CRC so structural checks are reached.
    fn reseal(image: &mut [u8]) {
        image[16..20].fill(0);
        let used = u32::from_le_bytes(image[12..16].try_into().unwrap()) as usize;
        let crc = crc32(&image[..HEADER_SIZE + used]);
        image[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn corrupt_images_are_rejected_and_store_kept() {
        let image = sample_image();
        let mut buf = vec![0u8; 1024];
        let mut s = store(&mut buf);
        s.set(&ucs2("Keep"), &VENDOR, BS, &[7]).unwrap();
        let corrupt = |e| Err(VarError::Corrupt(e));

        let mut bad = image.clone();
        bad[HEADER_SIZE + RECORD_HEADER_SIZE + 4] ^= 1; // data byte
        let stored = u32::from_le_bytes(bad[16..20].try_into().unwrap());
        let Err(VarError::Corrupt(Corruption::BadCrc {
            stored: s1,
            computed,
        })) = s.load(&bad)
        else {
            panic!("CRC not checked");
        };
        assert_eq!(s1, stored);
        assert_ne!(computed, stored);
        assert_eq!(
            VarError::Corrupt(Corruption::BadCrc { stored, computed }).status(),
            Status::VOLUME_CORRUPTED
        );

        assert_eq!(
            s.load(&image[..10]),
            corrupt(Corruption::Truncated {
                len: 10,
                needed: HEADER_SIZE
            })
        );
        let cut = image.len() - 1;
        assert_eq!(
            s.load(&image[..cut]),
            corrupt(Corruption::Truncated {
                len: cut,
                needed: image.len()
            })
        );
        let mut bad = image.clone();
        bad[0] = b'X';
        assert!(matches!(
            s.load(&bad),
            Err(VarError::Corrupt(Corruption::BadMagic(_)))
        ));
        let mut bad = image.clone();
        bad[8] = 2;
        assert_eq!(s.load(&bad), corrupt(Corruption::BadVersion(2)));
        // A sealed image whose record sizes lie.
        let mut bad = image.clone();
        bad[HEADER_SIZE + 24] = 200; // data_size of the first record
        reseal(&mut bad);
        assert_eq!(s.load(&bad), corrupt(Corruption::BadRecord { offset: 0 }));
        // A record whose name lacks its NUL.
        let mut bad = image.clone();
        bad[HEADER_SIZE + RECORD_HEADER_SIZE + 2] = b'x';
        reseal(&mut bad);
        assert_eq!(s.load(&bad), corrupt(Corruption::BadRecord { offset: 0 }));
        // Unsupported attributes in a record.
        let mut bad = image.clone();
        bad[HEADER_SIZE] |= Attributes::HARDWARE_ERROR_RECORD.bits() as u8;
        reseal(&mut bad);
        assert_eq!(s.load(&bad), corrupt(Corruption::BadRecord { offset: 0 }));
        // The second record renamed to the first one's name.
        let mut bad = image.clone();
        let second = RECORD_HEADER_SIZE + 4 + 2;
        bad[HEADER_SIZE + second + RECORD_HEADER_SIZE] = b'A';
        reseal(&mut bad);
        assert_eq!(
            s.load(&bad),
            corrupt(Corruption::Duplicate { offset: second })
        );

        // Nothing of the above touched the store.
        assert_eq!(get_vec(&s, "Keep", &VENDOR).unwrap().1, vec![7]);
        assert_eq!(get_vec(&s, "A", &VENDOR), Err(VarError::NotFound));
    }

    #[test]
    fn sealed_generation_round_trips() {
        let mut image = sample_image();
        assert_eq!(image_generation(&image), Some(0));
        seal_image(&mut image, 7).unwrap();
        assert_eq!(image_generation(&image), Some(7));
        let mut buf = vec![0u8; 1024];
        let mut s = store(&mut buf);
        assert_eq!(s.load(&image), Ok(2));
        // The generation is covered by the CRC.
        image[20] = 8;
        assert!(matches!(
            s.load(&image),
            Err(VarError::Corrupt(Corruption::BadCrc { .. }))
        ));
        assert_eq!(image_generation(&image[..21]), None);
        let len = image.len();
        assert_eq!(
            seal_image(&mut image[..len - 1], 1),
            Err(Corruption::Truncated {
                len: len - 1,
                needed: len
            })
        );
        // The allocated image equals the serialised one.
        assert_eq!(s.non_volatile_image(), sample_image());
    }

    #[test]
    fn image_larger_than_store_is_refused() {
        let mut buf = vec![0u8; 4096];
        let mut s = store(&mut buf);
        s.set(&ucs2("Big"), &VENDOR, NV_BS_RT, &[1; 1000]).unwrap();
        let mut image = vec![0u8; s.serialised_len()];
        s.serialise_non_volatile(&mut image).unwrap();
        let mut small = vec![0u8; 512];
        let mut t = store(&mut small);
        assert_eq!(
            t.load(&image).unwrap_err().status(),
            Status::BUFFER_TOO_SMALL
        );
    }

    #[test]
    fn tiny_buffer_is_refused() {
        let mut buf = vec![0u8; MIN_STORE_SIZE - 1];
        assert_eq!(
            VariableStore::new(&mut buf).err(),
            Some(VarError::StoreTooSmall {
                len: MIN_STORE_SIZE - 1,
                needed: MIN_STORE_SIZE
            })
        );
        let mut buf = vec![0u8; MIN_STORE_SIZE];
        let mut s = store(&mut buf);
        s.set(&ucs2("A"), &VENDOR, BS, &[1]).unwrap();
        assert_eq!(
            s.set(&ucs2("B"), &VENDOR, BS, &[1]).unwrap_err().status(),
            Status::OUT_OF_RESOURCES
        );
    }
}
