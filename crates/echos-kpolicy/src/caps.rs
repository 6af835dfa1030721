//! Per-task capability tables: a handle is only as good as the slot it names, so every use
//! checks index, generation and rights against the table, and revocation bumps the generation so
//! stale copies of a handle fail from then on.
//!
//! Lookup, insert and derive are O(1) (insert scans for a free slot: O(N) with N fixed). Revoke
//! also revokes every capability derived from the revoked one, transitively, in at most N passes
//! over the table (O(N²), N fixed; revoke is not on a real-time path).
#![forbid(unsafe_code)]

use echos_abi::{CapHandle, Errno, Rights};

/// What a capability designates: an index into the kernel's reservoir (or other object) table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId(pub u32);

#[derive(Clone, Copy, Debug)]
struct Slot {
    object: Option<ObjectId>,
    rights: Rights,
    generation: u32,
    /// The slot this capability was derived from and that slot's generation at the time, so a
    /// recycled parent slot is never mistaken for the original.
    parent: Option<(u16, u32)>,
}

const EMPTY: Slot = Slot {
    object: None,
    rights: Rights::NONE,
    generation: 0,
    parent: None,
};

pub struct CapTable<const N: usize> {
    slots: [Slot; N],
}

impl<const N: usize> Default for CapTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CapTable<N> {
    const _FITS_INDEX: () = assert!(N <= u16::MAX as usize + 1, "slot index is 16 bits");

    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::_FITS_INDEX;
        Self { slots: [EMPTY; N] }
    }

    /// Installs a capability with `rights` to `object`; [`Errno::NoMemory`] when full.
    pub fn insert(&mut self, object: ObjectId, rights: Rights) -> Result<CapHandle, Errno> {
        self.insert_with_parent(object, rights, None)
    }

    fn insert_with_parent(
        &mut self,
        object: ObjectId,
        rights: Rights,
        parent: Option<(u16, u32)>,
    ) -> Result<CapHandle, Errno> {
        // A slot whose generation reached u32::MAX is retired: reusing it would wrap the
        // generation and let a handle from 2³² revocations ago match again.
        let index = self
            .slots
            .iter()
            .position(|s| s.object.is_none() && s.generation != u32::MAX)
            .ok_or(Errno::NoMemory)?;
        let slot = &mut self.slots[index];
        slot.object = Some(object);
        slot.rights = rights;
        slot.parent = parent;
        Ok(CapHandle::new(index as u16, slot.generation, rights))
    }

    /// The object a handle designates, if the handle is live and both claims and holds `needed`.
    ///
    /// - index beyond the table, an empty never-issued slot, or a generation from the future:
    ///   [`Errno::BadHandle`] (forged);
    /// - generation older than the slot's: [`Errno::Revoked`];
    /// - claimed rights the slot does not hold, or `needed` not claimed:
    ///   [`Errno::PermissionDenied`].
    pub fn lookup(&self, handle: CapHandle, needed: Rights) -> Result<ObjectId, Errno> {
        let slot = self
            .slots
            .get(handle.index as usize)
            .ok_or(Errno::BadHandle)?;
        if handle.generation < slot.generation {
            return Err(Errno::Revoked);
        }
        if handle.generation > slot.generation {
            return Err(Errno::BadHandle);
        }
        let object = slot.object.ok_or(Errno::BadHandle)?;
        if !slot.rights.contains(handle.rights) || !handle.rights.contains(needed) {
            return Err(Errno::PermissionDenied);
        }
        Ok(object)
    }

    /// A new capability to the same object with `rights`, which must be a subset of what the
    /// parent holds (derive can only narrow).
    pub fn derive(&mut self, parent: CapHandle, rights: Rights) -> Result<CapHandle, Errno> {
        let object = self.lookup(parent, Rights::NONE)?;
        if !parent.rights.contains(rights) {
            return Err(Errno::PermissionDenied);
        }
        self.insert_with_parent(object, rights, Some((parent.index, parent.generation)))
    }

    /// Revokes the capability and everything derived from it; every handle to those slots
    /// fails with [`Errno::Revoked`] afterwards. Returns how many slots were revoked.
    pub fn revoke(&mut self, handle: CapHandle) -> Result<usize, Errno> {
        self.lookup(handle, Rights::NONE)?;
        self.clear(handle.index as usize);
        let mut revoked = 1;
        // Each pass revokes at least one more generation of descendants or stops.
        loop {
            let mut changed = false;
            for i in 0..N {
                let Some((p, generation)) = self.slots[i].parent else {
                    continue;
                };
                if self.slots[i].object.is_none() {
                    continue;
                }
                let parent = &self.slots[p as usize];
                if parent.generation != generation {
                    self.clear(i);
                    revoked += 1;
                    changed = true;
                }
            }
            if !changed {
                return Ok(revoked);
            }
        }
    }

    fn clear(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.object = None;
        slot.rights = Rights::NONE;
        slot.parent = None;
        slot.generation = slot.generation.saturating_add(1);
    }

    /// Live capabilities in the table.
    pub fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.object.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RES: ObjectId = ObjectId(7);

    #[test]
    fn rights_are_enforced_and_forged_rights_refused() {
        let mut t = CapTable::<8>::new();
        let full = t.insert(RES, Rights::ALL).unwrap();
        assert_eq!(t.lookup(full, Rights::WRITE), Ok(RES));
        let reader = t.derive(full, Rights::READ | Rights::STEP).unwrap();
        assert_eq!(t.lookup(reader, Rights::STEP), Ok(RES));
        // A task without the write capability is refused.
        assert_eq!(
            t.lookup(reader, Rights::WRITE),
            Err(Errno::PermissionDenied)
        );
        // Setting the WRITE bit in the handle by hand does not grant it.
        let forged = CapHandle::new(reader.index, reader.generation, Rights::ALL);
        assert_eq!(
            t.lookup(forged, Rights::WRITE),
            Err(Errno::PermissionDenied)
        );
        // Derive cannot widen.
        assert_eq!(
            t.derive(reader, Rights::WRITE),
            Err(Errno::PermissionDenied)
        );
    }

    #[test]
    fn forged_indices_and_generations_are_refused() {
        let mut t = CapTable::<4>::new();
        let h = t.insert(RES, Rights::READ).unwrap();
        let past_end = CapHandle::new(4, 0, Rights::READ);
        assert_eq!(t.lookup(past_end, Rights::READ), Err(Errno::BadHandle));
        let never_issued = CapHandle::new(3, 0, Rights::READ);
        assert_eq!(t.lookup(never_issued, Rights::READ), Err(Errno::BadHandle));
        let future = CapHandle::new(h.index, h.generation + 1, Rights::READ);
        assert_eq!(t.lookup(future, Rights::READ), Err(Errno::BadHandle));
        let max = CapHandle::new(u16::MAX, u32::MAX, Rights::ALL);
        assert_eq!(t.lookup(max, Rights::NONE), Err(Errno::BadHandle));
    }

    #[test]
    fn revoke_makes_stale_handles_fail_even_after_slot_reuse_and_cascades() {
        let mut t = CapTable::<8>::new();
        let root = t.insert(RES, Rights::ALL).unwrap();
        let child = t.derive(root, Rights::READ | Rights::STEP).unwrap();
        let grandchild = t.derive(child, Rights::READ).unwrap();
        let unrelated = t.insert(ObjectId(9), Rights::READ).unwrap();
        assert_eq!(t.revoke(child), Ok(2));
        assert_eq!(t.lookup(child, Rights::READ), Err(Errno::Revoked));
        assert_eq!(t.lookup(grandchild, Rights::READ), Err(Errno::Revoked));
        assert_eq!(t.lookup(root, Rights::WRITE), Ok(RES));
        assert_eq!(t.lookup(unrelated, Rights::READ), Ok(ObjectId(9)));
        // The freed slot is reused with a new generation; the old handle still fails.
        let reused = t.insert(ObjectId(11), Rights::READ).unwrap();
        assert_eq!(reused.index, child.index);
        assert_eq!(t.lookup(child, Rights::READ), Err(Errno::Revoked));
        assert_eq!(t.lookup(reused, Rights::READ), Ok(ObjectId(11)));
        // Revoking twice is refused: the handle is stale.
        assert_eq!(t.revoke(child), Err(Errno::Revoked));
        // The reused slot's new capability is not a descendant of the old child.
        assert_eq!(t.revoke(root), Ok(1));
        assert_eq!(t.lookup(reused, Rights::READ), Ok(ObjectId(11)));
        assert_eq!(t.live(), 2);
    }

    #[test]
    fn full_table_reports_no_memory() {
        let mut t = CapTable::<2>::new();
        t.insert(RES, Rights::READ).unwrap();
        t.insert(RES, Rights::READ).unwrap();
        assert_eq!(t.insert(RES, Rights::READ), Err(Errno::NoMemory));
    }
}
