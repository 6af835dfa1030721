//! Capability tables, per task and across tasks (`CapSpace`, with grants): a handle is only as
//! good as the slot it names, so every use checks index, generation and rights against the
//! table, and revocation bumps the generation so stale copies of a handle fail from then on.
//!
//! Lookup is O(1); insert, derive and grant scan one table for a free slot (O(N), N fixed).
//! Revoke also revokes every capability derived or granted from the revoked one, transitively,
//! in at most T·N passes over the fixed tables (revoke is not on a real-time path).
#![forbid(unsafe_code)]

use echos_abi::{CapHandle, Errno, Rights};

/// What a capability designates: an index into the kernel's reservoir (or other object) table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId(pub u32);

/// Where a capability was derived from: task, slot, and the slot's generation at the time, so a
/// recycled parent slot is never mistaken for the original.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Origin {
    task: u16,
    index: u16,
    generation: u32,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    object: Option<ObjectId>,
    rights: Rights,
    generation: u32,
    parent: Option<Origin>,
}

const EMPTY: Slot = Slot {
    object: None,
    rights: Rights::NONE,
    generation: 0,
    parent: None,
};

/// The capability tables of `T` tasks with `N` slots each. A capability lives only as long as
/// the one it was derived or granted from: clearing a slot (revoke, or its task stopping)
/// revokes its descendants in every task's table.
pub struct CapSpace<const T: usize, const N: usize> {
    tables: [[Slot; N]; T],
}

impl<const T: usize, const N: usize> Default for CapSpace<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const T: usize, const N: usize> CapSpace<T, N> {
    const _FITS: () = assert!(
        N <= u16::MAX as usize + 1 && T <= u16::MAX as usize + 1,
        "slot and task indices are 16 bits"
    );

    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::_FITS;
        Self {
            tables: [[EMPTY; N]; T],
        }
    }

    fn table(&self, task: u16) -> Result<&[Slot; N], Errno> {
        self.tables.get(task as usize).ok_or(Errno::InvalidArgument)
    }

    /// Installs a capability with `rights` to `object` in `task`'s table (the kernel does this
    /// when it creates an object); [`Errno::NoMemory`] when the table is full.
    pub fn insert(
        &mut self,
        task: u16,
        object: ObjectId,
        rights: Rights,
    ) -> Result<CapHandle, Errno> {
        self.insert_with_parent(task, object, rights, None)
    }

    fn insert_with_parent(
        &mut self,
        task: u16,
        object: ObjectId,
        rights: Rights,
        parent: Option<Origin>,
    ) -> Result<CapHandle, Errno> {
        let table = self
            .tables
            .get_mut(task as usize)
            .ok_or(Errno::InvalidArgument)?;
        // A slot whose generation reached u32::MAX is retired: reusing it would wrap the
        // generation and let a handle from 2³² revocations ago match again.
        let index = table
            .iter()
            .position(|s| s.object.is_none() && s.generation != u32::MAX)
            .ok_or(Errno::NoMemory)?;
        let slot = &mut table[index];
        slot.object = Some(object);
        slot.rights = rights;
        slot.parent = parent;
        Ok(CapHandle::new(index as u16, slot.generation, rights))
    }

    /// The object a handle designates in `task`'s table, if the handle is live and both claims
    /// and holds `needed`.
    ///
    /// - index beyond the table, an empty never-issued slot, or a generation from the future:
    ///   [`Errno::BadHandle`] (forged);
    /// - generation older than the slot's: [`Errno::Revoked`];
    /// - claimed rights the slot does not hold, or `needed` not claimed:
    ///   [`Errno::PermissionDenied`].
    pub fn lookup(&self, task: u16, handle: CapHandle, needed: Rights) -> Result<ObjectId, Errno> {
        let slot = self
            .table(task)?
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

    /// A new capability in `to`'s table to the same object, with `rights` a subset of what the
    /// handle holds (granting can only narrow). `to == from` is a plain derive.
    pub fn grant(
        &mut self,
        from: u16,
        handle: CapHandle,
        to: u16,
        rights: Rights,
    ) -> Result<CapHandle, Errno> {
        let object = self.lookup(from, handle, Rights::NONE)?;
        if !handle.rights.contains(rights) {
            return Err(Errno::PermissionDenied);
        }
        let origin = Origin {
            task: from,
            index: handle.index,
            generation: handle.generation,
        };
        self.insert_with_parent(to, object, rights, Some(origin))
    }

    /// Revokes the capability and everything derived or granted from it, in every table; every
    /// handle to those slots fails with [`Errno::Revoked`] afterwards. Returns how many slots
    /// were revoked.
    pub fn revoke(&mut self, task: u16, handle: CapHandle) -> Result<usize, Errno> {
        self.lookup(task, handle, Rights::NONE)?;
        self.clear(task as usize, handle.index as usize);
        Ok(1 + self.sweep_orphans())
    }

    /// A task stopped: all its capabilities go, and with them everything derived from them.
    /// Returns how many slots were cleared in all.
    pub fn stop_task(&mut self, task: u16) -> Result<usize, Errno> {
        self.table(task)?;
        let mut cleared = 0;
        for i in 0..N {
            if self.tables[task as usize][i].object.is_some() {
                self.clear(task as usize, i);
                cleared += 1;
            }
        }
        Ok(cleared + self.sweep_orphans())
    }

    /// Clears every live slot whose origin slot has moved on; repeats until nothing changes
    /// (each pass removes at least one generation of descendants, so at most T·N passes).
    fn sweep_orphans(&mut self) -> usize {
        let mut revoked = 0;
        loop {
            let mut changed = false;
            for t in 0..T {
                for i in 0..N {
                    let slot = self.tables[t][i];
                    let (Some(_), Some(o)) = (slot.object, slot.parent) else {
                        continue;
                    };
                    if self.tables[o.task as usize][o.index as usize].generation != o.generation {
                        self.clear(t, i);
                        revoked += 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                return revoked;
            }
        }
    }

    fn clear(&mut self, task: usize, index: usize) {
        let slot = &mut self.tables[task][index];
        slot.object = None;
        slot.rights = Rights::NONE;
        slot.parent = None;
        slot.generation = slot.generation.saturating_add(1);
    }

    /// Live capabilities in `task`'s table.
    pub fn live(&self, task: u16) -> usize {
        self.table(task)
            .map_or(0, |t| t.iter().filter(|s| s.object.is_some()).count())
    }
}

/// One task's capability table on its own (a [`CapSpace`] of one task).
pub struct CapTable<const N: usize> {
    space: CapSpace<1, N>,
}

impl<const N: usize> Default for CapTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CapTable<N> {
    pub const fn new() -> Self {
        Self {
            space: CapSpace::new(),
        }
    }

    /// See [`CapSpace::insert`].
    pub fn insert(&mut self, object: ObjectId, rights: Rights) -> Result<CapHandle, Errno> {
        self.space.insert(0, object, rights)
    }

    /// See [`CapSpace::lookup`].
    pub fn lookup(&self, handle: CapHandle, needed: Rights) -> Result<ObjectId, Errno> {
        self.space.lookup(0, handle, needed)
    }

    /// A new capability to the same object with a subset of the parent's rights.
    pub fn derive(&mut self, parent: CapHandle, rights: Rights) -> Result<CapHandle, Errno> {
        self.space.grant(0, parent, 0, rights)
    }

    /// See [`CapSpace::revoke`].
    pub fn revoke(&mut self, handle: CapHandle) -> Result<usize, Errno> {
        self.space.revoke(0, handle)
    }

    pub fn live(&self) -> usize {
        self.space.live(0)
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

    #[test]
    fn grants_across_tasks_follow_their_origin() {
        // Task 0 creates a reservoir and grants stage tasks 1 and 2 read+map (zero-copy weights)
        // and step; task 1 passes a read-only view on to task 2.
        let mut space = CapSpace::<3, 4>::new();
        let owner = space.insert(0, RES, Rights::ALL).unwrap();
        let stage = space
            .grant(0, owner, 1, Rights::READ | Rights::MAP | Rights::STEP)
            .unwrap();
        let view = space.grant(1, stage, 2, Rights::READ).unwrap();
        assert_eq!(space.lookup(2, view, Rights::READ), Ok(RES));
        assert_eq!(
            space.lookup(2, view, Rights::WRITE),
            Err(Errno::PermissionDenied)
        );
        assert_eq!(
            space.lookup(1, stage, Rights::WRITE),
            Err(Errno::PermissionDenied)
        );
        // A handle names a slot in the caller's own table: task 1's handle used by task 2 can
        // reach only what task 2 itself holds there (slot 0, READ), not task 1's STEP.
        assert_eq!(
            space.lookup(2, stage, Rights::STEP),
            Err(Errno::PermissionDenied)
        );
        assert_eq!(
            space.grant(1, stage, 2, Rights::WRITE),
            Err(Errno::PermissionDenied)
        );
        assert_eq!(
            space.grant(0, owner, 9, Rights::READ),
            Err(Errno::InvalidArgument)
        );
        // Revoking task 1's capability takes task 2's derived view with it.
        assert_eq!(space.revoke(1, stage), Ok(2));
        assert_eq!(space.lookup(2, view, Rights::READ), Err(Errno::Revoked));
        assert_eq!(space.lookup(0, owner, Rights::WRITE), Ok(RES));
        // When the owner stops, every capability granted from its slots goes too.
        let again = space.grant(0, owner, 2, Rights::READ).unwrap();
        assert_eq!(space.stop_task(0), Ok(2));
        assert_eq!(space.lookup(2, again, Rights::READ), Err(Errno::Revoked));
        assert_eq!((space.live(0), space.live(1), space.live(2)), (0, 0, 0));
    }
}
