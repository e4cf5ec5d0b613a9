//! String packages (UEFI 2.10 §33.3.6): their languages, the string-block
//! walk behind GetString (§33.3.6.2), and the edit model behind NewString
//! and SetString: a package is parsed into [`StringPackage`] (one slot per
//! string id), edited, and written back out. Pure code: no panics on any
//! input, checked arithmetic.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use super::packages::{
    HiiError, MAX_PACKAGE, PACKAGE_HEADER, PACKAGE_TYPE_STRINGS, packages, u16_at, u32_at,
};

/// String package header fields after the package header (§33.3.6.1).
const STRING_INFO_OFFSET_AT: usize = 8;
const LANGUAGE_WINDOW_AT: usize = 12;
const LANGUAGE_NAME_AT: usize = 44;
pub(super) const LANGUAGE_AT: usize = 46;

/// The RFC 4646 language of a string package.
pub fn package_language(package: &[u8]) -> Result<&[u8], HiiError> {
    let rest = package.get(LANGUAGE_AT..).ok_or(HiiError::Truncated {
        offset: LANGUAGE_AT,
    })?;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(HiiError::Truncated {
            offset: package.len(),
        })?;
    Ok(&rest[..len])
}

/// GetLanguages: the list's string-package languages, `;`-separated.
pub fn languages(list: &[u8]) -> Result<Vec<u8>, HiiError> {
    let mut out: Vec<u8> = Vec::new();
    for (_, package) in packages(list)?
        .into_iter()
        .filter(|(t, _)| *t == PACKAGE_TYPE_STRINGS)
    {
        let language = package_language(package)?;
        if !out.split(|&b| b == b';').any(|l| l == language) {
            if !out.is_empty() {
                out.push(b';');
            }
            out.extend_from_slice(language);
        }
    }
    Ok(out)
}

/// Reads a NUL-terminated UCS-2 string at `at`; returns it and the offset after the NUL.
fn ucs2_at(data: &[u8], mut at: usize) -> Result<(Vec<u16>, usize), HiiError> {
    let mut text = Vec::new();
    loop {
        let unit = u16_at(data, at)?;
        at += 2;
        if unit == 0 {
            return Ok((text, at));
        }
        text.push(unit);
    }
}

/// Reads a NUL-terminated 8-bit (SCSU, ASCII-compatible) string at `at`.
fn scsu_at(data: &[u8], at: usize) -> Result<(Vec<u16>, usize), HiiError> {
    let rest = data.get(at..).ok_or(HiiError::Truncated { offset: at })?;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(HiiError::Truncated { offset: data.len() })?;
    Ok((
        rest[..len].iter().map(|&b| u16::from(b)).collect(),
        at + len + 1,
    ))
}

/// The string `id` (1-based) of a string package, walking its string
/// blocks (§33.3.6.2). `Ok(None)` when the package has no such string.
///
/// A SIBT_DUPLICATE block stands for an earlier string: the walk restarts
/// for that id. Each restart looks for a smaller id, so a package whose
/// duplicates name themselves or each other ends with an error instead of
/// recursing until the stack overflows.
pub fn find_string(package: &[u8], id: u16) -> Result<Option<Vec<u16>>, HiiError> {
    let mut wanted = id;
    loop {
        match string_block(package, wanted)? {
            Lookup::Found(text) => return Ok(text),
            Lookup::Duplicate { offset, original } => {
                if original == 0 || original >= wanted {
                    return Err(HiiError::BadDuplicate { offset, original });
                }
                wanted = original;
            }
        }
    }
}

/// What the walk for one string id ends with.
enum Lookup {
    /// The string, or `None` when the package has no such id.
    Found(Option<Vec<u16>>),
    /// The id is a SIBT_DUPLICATE of string `original`.
    Duplicate { offset: usize, original: u16 },
}

/// Walks the string blocks up to the one holding string `id`.
fn string_block(package: &[u8], id: u16) -> Result<Lookup, HiiError> {
    let mut offset = u32_at(package, STRING_INFO_OFFSET_AT)? as usize;
    let mut current: u32 = 1;
    let wanted = u32::from(id);
    loop {
        let block_type = *package.get(offset).ok_or(HiiError::Truncated { offset })?;
        let body = offset + 1;
        // Each arm yields the strings of the block (read lazily: only the
        // wanted one is kept) and the offset of the next block.
        let (count, next, text): (u32, usize, Option<Vec<u16>>) = match block_type {
            0x00 => return Ok(Lookup::Found(None)),
            0x10 | 0x11 | 0x14 | 0x15 => {
                let at = if block_type & 1 == 1 { body + 1 } else { body };
                let (text, next) = if block_type >= 0x14 {
                    ucs2_at(package, at)?
                } else {
                    scsu_at(package, at)?
                };
                (1, next, Some(text))
            }
            0x12 | 0x13 | 0x16 | 0x17 => {
                let at = if block_type & 1 == 1 { body + 1 } else { body };
                let count = u32::from(u16_at(package, at)?);
                let mut next = at + 2;
                let mut found = None;
                for index in 0..count {
                    let (text, after) = if block_type >= 0x16 {
                        ucs2_at(package, next)?
                    } else {
                        scsu_at(package, next)?
                    };
                    if current + index == wanted {
                        found = Some(text);
                    }
                    next = after;
                }
                if found.is_some() {
                    return Ok(Lookup::Found(found));
                }
                (count, next, None)
            }
            // SIBT_DUPLICATE: this id repeats an earlier string.
            0x20 => {
                let original = u16_at(package, body)?;
                if current == wanted {
                    return Ok(Lookup::Duplicate { offset, original });
                }
                (1, body + 2, None)
            }
            0x21 => (u32::from(u16_at(package, body)?), body + 2, None),
            0x22 => (
                u32::from(
                    *package
                        .get(body)
                        .ok_or(HiiError::Truncated { offset: body })?,
                ),
                body + 1,
                None,
            ),
            // SIBT_EXT1/2/4: font and other non-string blocks with a length.
            0x30 => {
                let len = *package
                    .get(body + 1)
                    .ok_or(HiiError::Truncated { offset })?;
                (0, offset + usize::from(len), None)
            }
            0x31 => (0, offset + usize::from(u16_at(package, body + 1)?), None),
            0x32 => (0, offset + u32_at(package, body + 1)? as usize, None),
            _ => return Err(HiiError::UnknownBlock { offset, block_type }),
        };
        if count == 1 && current == wanted && text.is_some() {
            return Ok(Lookup::Found(text));
        }
        if next <= offset {
            return Err(HiiError::Truncated { offset });
        }
        current += count;
        if current > wanted && count > 0 && text.is_none() && block_type >= 0x21 {
            // The id falls in a skipped range.
            return Ok(Lookup::Found(None));
        }
        offset = next;
    }
}

/// What GetString finds for a string id in one language (UEFI 2.10
/// §34.2.1.2).
#[derive(Debug, PartialEq, Eq)]
pub enum StringAnswer {
    /// The string, from the string package of the asked language.
    Found(Vec<u16>),
    /// Only string packages of other languages have the id:
    /// EFI_INVALID_LANGUAGE. Choosing a fallback language is the caller's
    /// business (edk2's HiiLib does it with GetLanguages).
    OtherLanguageOnly,
    /// No string package has the id: EFI_NOT_FOUND.
    Missing,
}

/// GetString over a whole package list: the string package whose primary
/// language is `language` (ignoring case) answers; the others only tell
/// whether the id exists in another language.
pub fn list_string(list: &[u8], language: &[u8], id: u16) -> Result<StringAnswer, HiiError> {
    let strings: Vec<&[u8]> = packages(list)?
        .into_iter()
        .filter(|(t, _)| *t == PACKAGE_TYPE_STRINGS)
        .map(|(_, p)| p)
        .collect();
    let (asked, others): (Vec<&[u8]>, Vec<&[u8]>) = strings
        .into_iter()
        .partition(|p| package_language(p).is_ok_and(|l| is_language(l, language)));
    if let Some(package) = asked.first()
        && let Some(text) = find_string(package, id)?
    {
        return Ok(StringAnswer::Found(text));
    }
    // A malformed package of another language says nothing about the id.
    if others
        .iter()
        .any(|p| matches!(find_string(p, id), Ok(Some(_))))
    {
        return Ok(StringAnswer::OtherLanguageOnly);
    }
    Ok(StringAnswer::Missing)
}

/// The primary language of a string package's language field: a field may
/// name secondary languages after a `;` ("en-US;zh-Hant", §34.2.1.5).
pub fn primary_language(field: &[u8]) -> &[u8] {
    field.split(|&b| b == b';').next().unwrap_or(field)
}

/// Whether a package's language field has `language` as its primary
/// language (RFC 4646 tags compare without regard to case).
pub fn is_language(field: &[u8], language: &[u8]) -> bool {
    primary_language(field).eq_ignore_ascii_case(language)
}

/// GetSecondaryLanguages (§34.2.1.5): the secondary languages of the
/// string package whose primary language is `primary`, `;`-separated;
/// `None` when no package has that primary language.
pub fn secondary_languages(list: &[u8], primary: &[u8]) -> Result<Option<Vec<u8>>, HiiError> {
    for (_, package) in packages(list)?
        .into_iter()
        .filter(|(t, _)| *t == PACKAGE_TYPE_STRINGS)
    {
        let field = package_language(package)?;
        if is_language(field, primary) {
            let rest = field
                .iter()
                .position(|&b| b == b';')
                .map_or(&[][..], |at| &field[at + 1..]);
            return Ok(Some(rest.to_vec()));
        }
    }
    Ok(None)
}

/// One string id of a [`StringPackage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// SIBT_SKIP1/2: the id has no string in this language.
    Absent,
    /// A string (stored back as SIBT_STRING_UCS2, or _UCS2_FONT with the
    /// font identifier).
    Text { font: Option<u8>, text: Vec<u16> },
    /// SIBT_DUPLICATE of an earlier id.
    Duplicate(u16),
}

/// A string package parsed for editing (§33.3.6.1): the header fields
/// and one slot per string id, id 1 first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringPackage {
    pub language_window: [u8; 32],
    pub language_name: u16,
    /// The language field ("en-US", or "en-US;zh-Hant" with secondaries).
    pub language: Vec<u8>,
    /// SIBT_EXT1/2/4 blocks (font definitions and the like), kept verbatim
    /// and written before the strings so fonts precede their use.
    pub extensions: Vec<Vec<u8>>,
    pub slots: Vec<Slot>,
}

/// String ids are 16-bit and 0 is not an id: at most this many slots.
const MAX_SLOTS: usize = u16::MAX as usize;

impl StringPackage {
    /// An empty package for `language` whose language name is string
    /// `language_name` (0: none).
    pub fn new(language: &[u8], language_name: u16) -> Self {
        Self {
            language_window: [0; 32],
            language_name,
            language: language.to_vec(),
            extensions: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// Parses a whole string package (package header included).
    pub fn parse(package: &[u8]) -> Result<Self, HiiError> {
        let language = package_language(package)?.to_vec();
        let language_window = package
            .get(LANGUAGE_WINDOW_AT..LANGUAGE_NAME_AT)
            .and_then(|w| w.try_into().ok())
            .ok_or(HiiError::Truncated {
                offset: LANGUAGE_WINDOW_AT,
            })?;
        let mut parsed = Self {
            language_window,
            language_name: u16_at(package, LANGUAGE_NAME_AT)?,
            language,
            extensions: Vec::new(),
            slots: Vec::new(),
        };
        let mut offset = u32_at(package, STRING_INFO_OFFSET_AT)? as usize;
        loop {
            let block_type = *package.get(offset).ok_or(HiiError::Truncated { offset })?;
            let body = offset.checked_add(1).ok_or(HiiError::TooLarge)?;
            let next = match block_type {
                0x00 => return Ok(parsed),
                0x10..=0x17 => parsed.parse_strings(package, block_type, body)?,
                0x20 => {
                    let original = u16_at(package, body)?;
                    parsed.push(Slot::Duplicate(original))?;
                    body + 2
                }
                0x21 | 0x22 => {
                    let count = if block_type == 0x21 {
                        usize::from(u16_at(package, body)?)
                    } else {
                        usize::from(*package.get(body).ok_or(HiiError::Truncated { offset })?)
                    };
                    for _ in 0..count {
                        parsed.push(Slot::Absent)?;
                    }
                    body + if block_type == 0x21 { 2 } else { 1 }
                }
                0x30..=0x32 => {
                    // BlockType, BlockType2, then a 1-, 2- or 4-byte Length
                    // counting the whole block, which must hold those fields.
                    let (length, fields) = match block_type {
                        0x30 => (
                            usize::from(
                                *package
                                    .get(body + 1)
                                    .ok_or(HiiError::Truncated { offset })?,
                            ),
                            3,
                        ),
                        0x31 => (usize::from(u16_at(package, body + 1)?), 4),
                        _ => (u32_at(package, body + 1)? as usize, 6),
                    };
                    let block = offset
                        .checked_add(length)
                        .and_then(|end| package.get(offset..end))
                        .filter(|b| b.len() >= fields)
                        .ok_or(HiiError::Truncated { offset })?;
                    parsed.extensions.push(block.to_vec());
                    offset + length
                }
                _ => return Err(HiiError::UnknownBlock { offset, block_type }),
            };
            offset = next;
        }
    }

    /// One SCSU or UCS-2 string block, single or multiple, with or without
    /// a font; returns the offset after it.
    fn parse_strings(
        &mut self,
        package: &[u8],
        block_type: u8,
        body: usize,
    ) -> Result<usize, HiiError> {
        let font = if block_type & 1 == 1 {
            Some(
                *package
                    .get(body)
                    .ok_or(HiiError::Truncated { offset: body })?,
            )
        } else {
            None
        };
        let mut at = body + usize::from(font.is_some());
        let multiple = matches!(block_type, 0x12 | 0x13 | 0x16 | 0x17);
        let count = if multiple {
            let count = u16_at(package, at)?;
            at += 2;
            count
        } else {
            1
        };
        for _ in 0..count {
            let (text, next) = if block_type >= 0x14 {
                ucs2_at(package, at)?
            } else {
                scsu_at(package, at)?
            };
            self.push(Slot::Text { font, text })?;
            at = next;
        }
        Ok(at)
    }

    fn push(&mut self, slot: Slot) -> Result<(), HiiError> {
        if self.slots.len() >= MAX_SLOTS {
            return Err(HiiError::TooLarge);
        }
        self.slots.push(slot);
        Ok(())
    }

    /// The highest string id this package defines (0: none).
    pub fn last_id(&self) -> u16 {
        u16::try_from(self.slots.len()).unwrap_or(u16::MAX)
    }

    /// Puts `text` at string `id`, growing the package with absent ids up
    /// to it. Ids are 1-based; 0 is an error.
    pub fn set(&mut self, id: u16, font: Option<u8>, text: Vec<u16>) -> Result<(), HiiError> {
        let index = usize::from(id).checked_sub(1).ok_or(HiiError::TooLarge)?;
        while self.slots.len() <= index {
            self.push(Slot::Absent)?;
        }
        self.slots[index] = Slot::Text { font, text };
        Ok(())
    }

    /// At most the bytes [`Self::serialize`] writes after the header: the
    /// extension blocks, at most 3 bytes per absent or duplicate id (a skip
    /// block covers one or more), a text block's type, font and NUL-ended
    /// text, and SIBT_END.
    fn body_bound(&self) -> usize {
        let extensions = self.extensions.iter().map(Vec::len);
        let slots = self.slots.iter().map(|slot| match slot {
            Slot::Absent | Slot::Duplicate(_) => 3,
            Slot::Text { text, .. } => text
                .len()
                .saturating_add(1)
                .saturating_mul(2)
                .saturating_add(2),
        });
        extensions.chain(slots).fold(1, usize::saturating_add)
    }

    /// Writes the package back out (package header included).
    pub fn serialize(&self) -> Result<Vec<u8>, HiiError> {
        let header_size = LANGUAGE_AT + self.language.len() + 1;
        let header_field = u32::try_from(header_size).map_err(|_| HiiError::TooLarge)?;
        // The strings are callers' (NewString/SetString take up to 1M
        // characters): reserve an upper bound of the package fallibly, so
        // the writes below never grow the vector.
        let mut out =
            platform::fallible::with_capacity(header_size.saturating_add(self.body_bound()))?;
        out.extend_from_slice(&[0; PACKAGE_HEADER]);
        out.extend_from_slice(&header_field.to_le_bytes()); // HdrSize
        out.extend_from_slice(&header_field.to_le_bytes()); // StringInfoOffset
        out.extend_from_slice(&self.language_window);
        out.extend_from_slice(&self.language_name.to_le_bytes());
        out.extend_from_slice(&self.language);
        out.push(0);
        for block in &self.extensions {
            out.extend_from_slice(block);
        }
        let mut absent = 0usize;
        for slot in &self.slots {
            if *slot == Slot::Absent {
                absent += 1;
                continue;
            }
            write_skips(&mut out, absent);
            absent = 0;
            match slot {
                Slot::Absent => {}
                Slot::Duplicate(original) => {
                    out.push(0x20);
                    out.extend_from_slice(&original.to_le_bytes());
                }
                Slot::Text { font, text } => {
                    match font {
                        Some(font) => out.extend_from_slice(&[0x15, *font]),
                        None => out.push(0x14),
                    }
                    for unit in text.iter().chain(core::iter::once(&0)) {
                        out.extend_from_slice(&unit.to_le_bytes());
                    }
                }
            }
        }
        write_skips(&mut out, absent);
        out.push(0x00); // SIBT_END
        if out.len() > MAX_PACKAGE {
            return Err(HiiError::TooLarge);
        }
        let head = (out.len() as u32) | (u32::from(PACKAGE_TYPE_STRINGS) << 24);
        out[..PACKAGE_HEADER].copy_from_slice(&head.to_le_bytes());
        Ok(out)
    }
}

/// SIBT_SKIP2/SKIP1 blocks for `count` absent ids.
fn write_skips(out: &mut Vec<u8>, mut count: usize) {
    while count > 0 {
        let step = count.min(usize::from(u16::MAX));
        if step > usize::from(u8::MAX) {
            out.push(0x21);
            out.extend_from_slice(&(step as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&[0x22, step as u8]);
        }
        count -= step;
    }
}

/// The highest string id any string package of `list` defines: NewString
/// hands out the next one, reserved in every language (§34.2.1.1).
pub fn last_string_id(list: &[u8]) -> Result<u16, HiiError> {
    let mut last = 0;
    for (_, package) in packages(list)?
        .into_iter()
        .filter(|(t, _)| *t == PACKAGE_TYPE_STRINGS)
    {
        last = last.max(StringPackage::parse(package)?.last_id());
    }
    Ok(last)
}

/// Why NewString or SetString could not edit a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The list or one of its string packages is malformed, or the result
    /// would not fit (EFI_OUT_OF_RESOURCES).
    Malformed(HiiError),
    /// No string package for the language, or no such string id
    /// (EFI_NOT_FOUND).
    NotFound,
}

impl From<HiiError> for EditError {
    fn from(error: HiiError) -> Self {
        EditError::Malformed(error)
    }
}

/// Rebuilds `list` with the string package at `index` (among all its
/// packages) replaced by `edited`, or appended when `index` is `None`.
fn replace_package(list: &[u8], index: Option<usize>, edited: &[u8]) -> Result<Vec<u8>, HiiError> {
    let found = packages(list)?;
    // Room for one more: the push below stays within it.
    let mut all = platform::fallible::collect(found.len() + 1, found.into_iter().map(|(_, p)| p))?;
    match index.and_then(|i| all.get_mut(i)) {
        Some(slot) => *slot = edited,
        None => all.push(edited),
    }
    super::packages::build_list(&super::packages::list_guid(list)?, &all)
}

/// The index (among all packages) and parsed form of the string package
/// whose primary language is `language`.
fn language_package(
    list: &[u8],
    language: &[u8],
) -> Result<Option<(usize, StringPackage)>, HiiError> {
    for (index, (package_type, package)) in packages(list)?.into_iter().enumerate() {
        if package_type == PACKAGE_TYPE_STRINGS && is_language(package_language(package)?, language)
        {
            return Ok(Some((index, StringPackage::parse(package)?)));
        }
    }
    Ok(None)
}

/// NewString (§34.2.1.1): adds `text` under a new id, unique in the whole
/// list, to the string package for `language` (created when missing, with
/// `language_name` stored as its name string). Returns the new list and id.
pub fn new_string(
    list: &[u8],
    language: &[u8],
    language_name: Option<&[u16]>,
    font: Option<u8>,
    text: &[u16],
) -> Result<(Vec<u8>, u16), EditError> {
    let last = last_string_id(list)?;
    let next = |id: u16| {
        id.checked_add(1)
            .ok_or(EditError::Malformed(HiiError::TooLarge))
    };
    let (index, mut package, id) = match language_package(list, language)? {
        Some((index, package)) => (Some(index), package, next(last)?),
        None => {
            // A new language: its name takes the next id, the string the one after.
            let name_id = next(last)?;
            let mut package = StringPackage::new(language, 0);
            if let Some(name) = language_name {
                package.set(
                    name_id,
                    None,
                    platform::fallible::copy(name).map_err(HiiError::from)?,
                )?;
                package.language_name = name_id;
            }
            (None, package, next(name_id)?)
        }
    };
    package.set(
        id,
        font,
        platform::fallible::copy(text).map_err(HiiError::from)?,
    )?;
    let edited = package.serialize()?;
    Ok((replace_package(list, index, &edited)?, id))
}

/// SetString (§34.2.1.3): replaces string `id` of the `language` package.
/// The id must already be in use in the list (NewString reserves an id
/// for every language, so it may be absent from this package).
pub fn set_string(
    list: &[u8],
    id: u16,
    language: &[u8],
    font: Option<u8>,
    text: &[u16],
) -> Result<Vec<u8>, EditError> {
    if id == 0 || id > last_string_id(list)? {
        return Err(EditError::NotFound);
    }
    let (index, mut package) = language_package(list, language)?.ok_or(EditError::NotFound)?;
    package.set(
        id,
        font,
        platform::fallible::copy(text).map_err(HiiError::from)?,
    )?;
    let edited = package.serialize()?;
    Ok(replace_package(list, Some(index), &edited)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hii::packages::tests::package_list;
    use crate::hii::packages::{PACKAGE_TYPE_GUID, has_package};

    fn ucs2(s: &str) -> Vec<u8> {
        s.encode_utf16()
            .chain(core::iter::once(0))
            .flat_map(u16::to_le_bytes)
            .collect()
    }

    /// A string package for `language` with `blocks` (SIBT_END appended).
    fn string_package(language: &str, blocks: &[u8]) -> Vec<u8> {
        let mut header = vec![0u8; LANGUAGE_AT];
        header.extend_from_slice(language.as_bytes());
        header.push(0);
        let info_offset = header.len() as u32;
        header[4..8].copy_from_slice(&info_offset.to_le_bytes());
        header[8..12].copy_from_slice(&info_offset.to_le_bytes());
        let mut package = header;
        package.extend_from_slice(blocks);
        package.push(0x00);
        let head = (package.len() as u32) | (u32::from(PACKAGE_TYPE_STRINGS) << 24);
        package[..4].copy_from_slice(&head.to_le_bytes());
        package
    }

    fn text(s: &str) -> Option<Vec<u16>> {
        Some(s.encode_utf16().collect())
    }

    fn english() -> Vec<u8> {
        let mut blocks = vec![0x14];
        blocks.extend(ucs2("en-US")); // id 1: the language name, as edk2 emits
        blocks.push(0x16);
        blocks.extend(2u16.to_le_bytes());
        blocks.extend(ucs2("two"));
        blocks.extend(ucs2("three"));
        blocks.extend([0x22, 2]); // skip ids 4 and 5
        blocks.push(0x10);
        blocks.extend(b"six\0");
        blocks.extend([0x20, 2, 0]); // id 7 repeats id 2
        blocks.extend([0x30, 0x40, 3]); // an EXT1 block of 3 bytes
        blocks.push(0x14);
        blocks.extend(ucs2("eight"));
        string_package("en-US", &blocks)
    }

    #[test]
    fn strings_are_found_through_every_block_kind() {
        let package = english();
        assert_eq!(find_string(&package, 1).unwrap(), text("en-US"));
        assert_eq!(find_string(&package, 2).unwrap(), text("two"));
        assert_eq!(find_string(&package, 3).unwrap(), text("three"));
        assert_eq!(find_string(&package, 4).unwrap(), None);
        assert_eq!(find_string(&package, 6).unwrap(), text("six"));
        assert_eq!(find_string(&package, 7).unwrap(), text("two"));
        assert_eq!(find_string(&package, 8).unwrap(), text("eight"));
        assert_eq!(find_string(&package, 9).unwrap(), None);
    }

    /// Found by the `hii` fuzz target (a timeout): a duplicate naming itself
    /// made the lookup call itself forever, a loop once the tail call was
    /// optimised and a stack overflow otherwise.
    #[test]
    fn duplicates_naming_themselves_or_later_strings_are_errors() {
        let mut blocks = vec![0x14];
        blocks.extend(ucs2("one"));
        blocks.extend([0x20, 2, 0]); // id 2 repeats itself
        blocks.extend([0x20, 4, 0]); // id 3 repeats id 4 ...
        blocks.extend([0x20, 3, 0]); // ... which repeats id 3
        blocks.extend([0x20, 3, 0]); // id 5 repeats 3, so 4, so 3 again
        let package = string_package("en-US", &blocks);
        // The blocks start after the header and "en-US\0"; id 1 takes 9 bytes.
        let id_2_block = LANGUAGE_AT + 6 + 9;
        assert_eq!(find_string(&package, 1).unwrap(), text("one"));
        assert_eq!(
            find_string(&package, 2),
            Err(HiiError::BadDuplicate {
                offset: id_2_block,
                original: 2
            })
        );
        assert!(matches!(
            find_string(&package, 3),
            Err(HiiError::BadDuplicate { original: 4, .. })
        ));
        assert!(matches!(
            find_string(&package, 5),
            Err(HiiError::BadDuplicate { original: 4, .. })
        ));
    }

    #[test]
    fn languages_and_lookup_by_language() {
        let mut french_blocks = vec![0x14];
        french_blocks.extend(ucs2("un"));
        let list = package_list(&[english(), string_package("fr-FR", &french_blocks)]);
        assert_eq!(languages(&list).unwrap(), b"en-US;fr-FR");
        let found = |s: &str| StringAnswer::Found(s.encode_utf16().collect());
        assert_eq!(list_string(&list, b"fr-fr", 1).unwrap(), found("un"));
        assert_eq!(list_string(&list, b"en-US", 2).unwrap(), found("two"));
        // §34.2.1.2: another language's string is EFI_INVALID_LANGUAGE, an
        // id no package has EFI_NOT_FOUND (HIIStringBBTestConformance.c 842).
        assert_eq!(
            list_string(&list, b"de", 2).unwrap(),
            StringAnswer::OtherLanguageOnly
        );
        assert_eq!(
            list_string(&list, b"fr-FR", 2).unwrap(),
            StringAnswer::OtherLanguageOnly
        );
        assert_eq!(
            list_string(&list, b"en-US", 99).unwrap(),
            StringAnswer::Missing
        );
        assert!(has_package(&list, PACKAGE_TYPE_STRINGS, None));
        assert!(!has_package(&list, PACKAGE_TYPE_GUID, None));
    }

    #[test]
    fn malformed_data_is_an_error() {
        let mut package = english();
        let at = package.len() - 1;
        package[at] = 0x99;
        assert_eq!(
            find_string(&package, 99),
            Err(HiiError::UnknownBlock {
                offset: at,
                block_type: 0x99
            })
        );
        let mut list = package_list(&[english()]);
        list[16] = 0xff;
        assert!(packages(&list).is_err());
        let mut cut = english();
        cut.truncate(LANGUAGE_AT + 3);
        assert!(find_string(&cut, 1).is_err());
    }

    #[test]
    fn secondary_languages_follow_the_primary_one() {
        let list = package_list(&[string_package("en-US;zh-Hant;fr", &[])]);
        assert_eq!(languages(&list).unwrap(), b"en-US;zh-Hant;fr");
        assert_eq!(
            secondary_languages(&list, b"en-us").unwrap(),
            Some(b"zh-Hant;fr".to_vec())
        );
        assert_eq!(secondary_languages(&list, b"zh-Hant").unwrap(), None);
        let plain = package_list(&[string_package("de", &[])]);
        assert_eq!(
            secondary_languages(&plain, b"de").unwrap(),
            Some(Vec::new())
        );
    }

    #[test]
    fn parsed_packages_serialize_to_packages_with_the_same_strings() {
        let original = english();
        let parsed = StringPackage::parse(&original).unwrap();
        assert_eq!(parsed.last_id(), 8);
        assert_eq!(parsed.slots[6], Slot::Duplicate(2));
        assert_eq!(parsed.extensions, vec![vec![0x30, 0x40, 3]]);
        let written = parsed.serialize().unwrap();
        for id in 1..=9 {
            assert_eq!(
                find_string(&written, id),
                find_string(&original, id),
                "id {id}"
            );
        }
        assert_eq!(StringPackage::parse(&written).unwrap(), parsed);
    }

    #[test]
    fn long_runs_of_absent_ids_are_written_as_skip_blocks() {
        let mut package = StringPackage::new(b"en", 0);
        package.set(700, None, vec![u16::from(b'x')]).unwrap();
        let written = package.serialize().unwrap();
        assert_eq!(find_string(&written, 700).unwrap(), text("x"));
        assert_eq!(find_string(&written, 699).unwrap(), None);
        assert_eq!(StringPackage::parse(&written).unwrap().last_id(), 700);
        assert!(package.set(0, None, Vec::new()).is_err());
    }

    #[test]
    fn serialize_reserves_all_it_writes_up_front() {
        let mut package = StringPackage::new(b"en-US", 0);
        package
            .set(3, Some(1), "three".encode_utf16().collect())
            .unwrap();
        package.set(700, None, vec![u16::from(b'x'); 1000]).unwrap();
        package.set(3000, None, Vec::new()).unwrap();
        let written = package.serialize().unwrap();
        let header = LANGUAGE_AT + b"en-US".len() + 1;
        assert!(written.len() <= header + package.body_bound());
        // Nothing grew the vector past the one fallible reservation.
        assert_eq!(written.capacity(), header + package.body_bound());
    }

    #[test]
    fn new_strings_get_an_id_unused_in_every_language() {
        let mut french_blocks = vec![0x14];
        french_blocks.extend(ucs2("un"));
        let list = package_list(&[english(), string_package("fr-FR", &french_blocks)]);
        let hello: Vec<u16> = "bonjour".encode_utf16().collect();
        let (list, id) = new_string(&list, b"fr-FR", None, None, &hello).unwrap();
        assert_eq!(id, 9);
        assert_eq!(
            list_string(&list, b"fr-FR", 9).unwrap(),
            StringAnswer::Found(hello)
        );
        assert_eq!(
            list_string(&list, b"en-US", 8).unwrap(),
            StringAnswer::Found(text("eight").unwrap())
        );
        // A new language gets a package; its name takes an id of its own.
        let name: Vec<u16> = "Deutsch".encode_utf16().collect();
        let hallo: Vec<u16> = "hallo".encode_utf16().collect();
        let (list, id) = new_string(&list, b"de", Some(&name), None, &hallo).unwrap();
        assert_eq!(id, 11);
        assert_eq!(languages(&list).unwrap(), b"en-US;fr-FR;de");
        assert_eq!(
            list_string(&list, b"de", 10).unwrap(),
            StringAnswer::Found(name)
        );
        assert_eq!(
            list_string(&list, b"de", 11).unwrap(),
            StringAnswer::Found(hallo)
        );
        assert_eq!(last_string_id(&list).unwrap(), 11);
        assert_eq!(packages(&list).unwrap().len(), 3);
    }

    #[test]
    fn set_string_replaces_a_string_of_one_language_only() {
        let list = package_list(&[english(), guid_package_for_test()]);
        let two: Vec<u16> = "TWO".encode_utf16().collect();
        let edited = set_string(&list, 2, b"en-US", None, &two).unwrap();
        assert_eq!(
            list_string(&edited, b"en-US", 2).unwrap(),
            StringAnswer::Found(two.clone())
        );
        assert_eq!(
            list_string(&edited, b"en-US", 3).unwrap(),
            StringAnswer::Found(text("three").unwrap())
        );
        // The GUID package stays where it was.
        assert_eq!(packages(&edited).unwrap()[1], packages(&list).unwrap()[1]);
        assert_eq!(
            set_string(&list, 9, b"en-US", None, &two),
            Err(EditError::NotFound)
        );
        assert_eq!(
            set_string(&list, 0, b"en-US", None, &two),
            Err(EditError::NotFound)
        );
        assert_eq!(
            set_string(&list, 2, b"fr-FR", None, &two),
            Err(EditError::NotFound)
        );
    }

    #[test]
    fn extension_blocks_too_short_for_their_length_field_are_errors() {
        // An EXT1 block stating 2 bytes: its Length byte would lie outside it.
        let package = string_package("en", &[0x30, 0x40, 2]);
        assert!(matches!(
            StringPackage::parse(&package),
            Err(HiiError::Truncated { .. })
        ));
    }

    fn guid_package_for_test() -> Vec<u8> {
        crate::hii::packages::tests::guid_package(3, b"data")
    }

    #[test]
    fn editing_a_malformed_package_is_an_error_not_a_panic() {
        let mut broken = english();
        let at = broken.len() - 1;
        broken[at] = 0x99;
        let list = package_list(&[broken]);
        assert!(matches!(
            new_string(&list, b"en-US", None, None, &[1]),
            Err(EditError::Malformed(HiiError::UnknownBlock { .. }))
        ));
        let mut skips = vec![0u8; 0];
        for _ in 0..2 {
            skips.extend([0x21, 0xff, 0xff]);
        }
        assert_eq!(
            StringPackage::parse(&string_package("en", &skips)),
            Err(HiiError::TooLarge)
        );
    }
}
