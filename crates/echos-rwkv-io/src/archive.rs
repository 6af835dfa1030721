//! Zip archives (PyTorch checkpoints, NumPy `.npz`) read within bounds: a member is read only
//! up to the size its caller can justify, whatever its own header claims, so a deflate bomb
//! stops at that size instead of inflating to the end.
//!
//! The zip crate itself reserves about 208 bytes per central-directory entry that the end
//! record claims before it reads them: at most 13.6 MB for a classic zip (65,535 entries) and
//! 4.5x the file for zip64 (it checks 46 bytes per claimed entry fit before the record).

use std::io::{Cursor, Read};

use zip::result::ZipError;
use zip::ZipArchive;

pub type Zip<'a> = ZipArchive<Cursor<&'a [u8]>>;

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("no member `{0}` in the archive")]
    Missing(String),
    #[error("member `{name}` holds {size} bytes, more than the {limit} bytes that {why}")]
    TooLarge {
        name: String,
        size: u64,
        limit: u64,
        why: String,
    },
    #[error(
        "member `{name}` inflates past the {limit} bytes that {why} (its header claims {declared})"
    )]
    Inflates {
        name: String,
        declared: u64,
        limit: u64,
        why: String,
    },
    #[error("member `{name}` inflates to {found} bytes, but its header says {declared}")]
    SizeMismatch {
        name: String,
        declared: u64,
        found: u64,
    },
    #[error("member `{0}`: {1}")]
    Zip(String, String),
}

pub fn open(bytes: &[u8]) -> Result<Zip<'_>, String> {
    ZipArchive::new(Cursor::new(bytes)).map_err(|e| e.to_string())
}

/// Member `name` whole, refused as soon as it would exceed `limit` bytes (`why` says what sets
/// the limit, for the message). The member's declared size must also be what it inflates to.
pub fn read_member(
    zip: &mut Zip<'_>,
    name: &str,
    limit: u64,
    why: &dyn Fn() -> String,
) -> Result<Vec<u8>, MemberError> {
    let member = zip.by_name(name).map_err(|e| match e {
        ZipError::FileNotFound => MemberError::Missing(name.into()),
        e => MemberError::Zip(name.into(), e.to_string()),
    })?;
    let declared = member.size();
    if declared > limit {
        return Err(MemberError::TooLarge {
            name: name.into(),
            size: declared,
            limit,
            why: why(),
        });
    }
    // `declared <= limit`, which the caller sized from what it may hold.
    let mut out = Vec::with_capacity(declared as usize);
    member
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| MemberError::Zip(name.into(), e.to_string()))?;
    let found = out.len() as u64;
    if found > limit {
        return Err(MemberError::Inflates {
            name: name.into(),
            declared,
            limit,
            why: why(),
        });
    }
    if found != declared {
        return Err(MemberError::SizeMismatch {
            name: name.into(),
            declared,
            found,
        });
    }
    Ok(out)
}
