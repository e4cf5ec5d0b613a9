//! Typed names for the opaque values the EFI boundary hands out and takes
//! back: handles (UEFI 2.10 §7.3), events (§7.1), protocol interfaces,
//! RegisterProtocolNotify registrations (§7.3.5), HII package list handles
//! (§34.8) and key notification handles (§12.3.5).
//!
//! To an EFI caller each is a `VOID *`. The firmware keeps them as numbers
//! it compares and looks up, never as pointers it follows, and the types
//! keep one kind from standing in for another: an event where a handle
//! belongs, or an interface where an agent belongs, is a compile error, not
//! a lookup that silently misses.
#![forbid(unsafe_code)]

use core::ffi::c_void;
use core::fmt;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(transparent)]
        pub struct $name(usize);

        impl $name {
            /// The value an EFI caller passes for "none".
            pub const NULL: Self = Self(0);

            /// Takes the caller's value as it is; whether it names anything
            /// is for the table that looks it up to decide.
            pub fn from_raw(raw: *mut c_void) -> Self {
                Self(raw.addr())
            }

            /// The value to hand to an EFI caller. The pointer carries no
            /// provenance: it is a name, not something to dereference.
            pub fn as_raw(self) -> *mut c_void {
                core::ptr::without_provenance_mut(self.0)
            }

            /// A name made from a number: fresh values chosen by a table,
            /// and fixed values in tests.
            pub const fn from_value(value: usize) -> Self {
                Self(value)
            }

            pub const fn value(self) -> usize {
                self.0
            }

            pub const fn is_null(self) -> bool {
                self.0 == 0
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }
    };
}

opaque_id!(
    /// An `EFI_HANDLE`: a handle in the handle database, also used for the
    /// agent (driver or image handle) and controller of an open.
    HandleId
);
opaque_id!(
    /// An `EFI_EVENT` created by CreateEvent(Ex).
    EventId
);
opaque_id!(
    /// A protocol interface pointer as installed on a handle. The database
    /// stores and returns it; only the protocol's owner dereferences it.
    Interface
);
opaque_id!(
    /// An `EFI_HII_HANDLE`: a package list in the HII database (§34.8).
    PackageListHandle
);
opaque_id!(
    /// The `NotifyHandle` HII RegisterPackageNotify returns and
    /// UnregisterPackageNotify takes back (§34.8.1.6, §34.8.1.7).
    PackageNotifyHandle
);
opaque_id!(
    /// The `NotifyHandle` RegisterKeyNotify returns and UnregisterKeyNotify
    /// takes back (§12.3.5, §12.3.6).
    KeyNotifyHandle
);
opaque_id!(
    /// The `Registration` key RegisterProtocolNotify returns and
    /// LocateHandle(ByRegisterNotify) takes back.
    Registration
);

impl Interface {
    /// The interface as the caller installed it, with the provenance the
    /// owner exposed, for handing back to EFI callers who dereference it.
    pub fn as_exposed_ptr<T>(self) -> *mut T {
        core::ptr::with_exposed_provenance_mut(self.0)
    }

    /// Records an interface pointer, exposing its provenance so that
    /// [`Interface::as_exposed_ptr`] can return a usable pointer later.
    pub fn from_ptr<T>(ptr: *const T) -> Self {
        Self(ptr.expose_provenance())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_raw_value() {
        let h = HandleId::from_value(0x1234);
        assert_eq!(HandleId::from_raw(h.as_raw()), h);
        assert!(HandleId::from_raw(core::ptr::null_mut()).is_null());
        assert_eq!(format!("{h:?}"), "HandleId(0x1234)");
    }

    #[test]
    fn interfaces_keep_a_usable_pointer() {
        let mut slot = 7u32;
        let interface = Interface::from_ptr(&mut slot as *mut u32);
        assert_eq!(interface.as_exposed_ptr::<u32>(), &mut slot as *mut u32);
    }
}
