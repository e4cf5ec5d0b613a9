//! The handle/protocol database (UEFI 2.10 §7.3), as pure bookkeeping over
//! opaque values (`crate::ids`): handles, interfaces, agents and events are
//! the values the EFI boundary hands out or receives. Nothing here dereferences them.
#![forbid(unsafe_code)]

pub use crate::ids::HandleId;
use crate::ids::{EventId, Interface, Registration};
use crate::spec_gaps::{
    OPEN_PROTOCOL_BY_CHILD_CONTROLLER, OPEN_PROTOCOL_BY_DRIVER, OPEN_PROTOCOL_BY_HANDLE_PROTOCOL,
    OPEN_PROTOCOL_EXCLUSIVE, OPEN_PROTOCOL_GET_PROTOCOL, OPEN_PROTOCOL_TEST_PROTOCOL,
};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use uefi_raw::{Guid, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenInfo {
    pub agent: HandleId,
    pub controller: HandleId,
    pub attributes: u32,
    pub count: u32,
}

struct Protocol {
    guid: Guid,
    interface: Interface,
    opens: Vec<OpenInfo>,
}

struct NotifyRegistration {
    guid: Guid,
    event: EventId,
    /// Handles that gained the protocol since the last LocateHandle(ByRegisterNotify).
    pending: Vec<HandleId>,
}

pub struct HandleDb {
    /// Keyed by handle value; values are protocols in installation order.
    handles: BTreeMap<HandleId, Vec<Protocol>>,
    /// Creation order, for AllHandles.
    order: Vec<HandleId>,
    registrations: BTreeMap<Registration, NotifyRegistration>,
}

impl Default for HandleDb {
    fn default() -> Self {
        Self::new()
    }
}

/// What a caller must do after a database change: signal these events
/// (RegisterProtocolNotify), outside any lock.
#[must_use]
pub struct Notify(pub Vec<EventId>);

impl HandleDb {
    pub const fn new() -> Self {
        HandleDb {
            handles: BTreeMap::new(),
            order: Vec::new(),
            registrations: BTreeMap::new(),
        }
    }

    pub fn is_handle(&self, handle: HandleId) -> bool {
        self.handles.contains_key(&handle)
    }

    /// Adds an empty handle; `handle` is a fresh value chosen by the caller.
    pub fn create_handle(&mut self, handle: HandleId) {
        if let alloc::collections::btree_map::Entry::Vacant(slot) = self.handles.entry(handle) {
            slot.insert(Vec::new());
            self.order.push(handle);
        }
    }

    fn remove_if_empty(&mut self, handle: HandleId) -> bool {
        if self.handles.get(&handle).is_some_and(|p| p.is_empty()) {
            self.handles.remove(&handle);
            self.order.retain(|&h| h != handle);
            return true;
        }
        false
    }

    fn protocols(&self, handle: HandleId) -> Result<&Vec<Protocol>, Status> {
        self.handles.get(&handle).ok_or(Status::INVALID_PARAMETER)
    }

    fn protocol_mut(&mut self, handle: HandleId, guid: &Guid) -> Result<&mut Protocol, Status> {
        let protocols = self
            .handles
            .get_mut(&handle)
            .ok_or(Status::INVALID_PARAMETER)?;
        protocols
            .iter_mut()
            .find(|p| p.guid == *guid)
            .ok_or(Status::UNSUPPORTED)
    }

    /// InstallProtocolInterface on an existing handle (§7.3.2).
    pub fn install(
        &mut self,
        handle: HandleId,
        guid: Guid,
        interface: Interface,
    ) -> Result<Notify, Status> {
        let protocols = self
            .handles
            .get_mut(&handle)
            .ok_or(Status::INVALID_PARAMETER)?;
        if protocols.iter().any(|p| p.guid == guid) {
            return Err(Status::INVALID_PARAMETER);
        }
        protocols.push(Protocol {
            guid,
            interface,
            opens: Vec::new(),
        });
        Ok(self.notify(handle, &guid))
    }

    fn notify(&mut self, handle: HandleId, guid: &Guid) -> Notify {
        let mut events = Vec::new();
        for r in self.registrations.values_mut().filter(|r| r.guid == *guid) {
            r.pending.push(handle);
            events.push(r.event);
        }
        Notify(events)
    }

    /// UninstallProtocolInterface (§7.3.3) once the drivers holding the
    /// interface were asked to let go: still open BY_DRIVER, EXCLUSIVE or
    /// BY_CHILD_CONTROLLER, it is refused. GET_PROTOCOL, BY_HANDLE_PROTOCOL
    /// and TEST_PROTOCOL opens go with it.
    pub fn uninstall(
        &mut self,
        handle: HandleId,
        guid: &Guid,
        interface: Interface,
    ) -> Result<(), Status> {
        let protocols = self
            .handles
            .get_mut(&handle)
            .ok_or(Status::INVALID_PARAMETER)?;
        let index = protocols
            .iter()
            .position(|p| p.guid == *guid && p.interface == interface)
            .ok_or(Status::NOT_FOUND)?;
        let held =
            OPEN_PROTOCOL_BY_DRIVER | OPEN_PROTOCOL_EXCLUSIVE | OPEN_PROTOCOL_BY_CHILD_CONTROLLER;
        if protocols[index]
            .opens
            .iter()
            .any(|o| o.attributes & held != 0)
        {
            return Err(Status::ACCESS_DENIED);
        }
        protocols.remove(index);
        for r in self.registrations.values_mut() {
            r.pending.retain(|&h| h != handle || r.guid != *guid);
        }
        self.remove_if_empty(handle);
        Ok(())
    }

    /// ReinstallProtocolInterface (§7.3.4).
    pub fn reinstall(
        &mut self,
        handle: HandleId,
        guid: &Guid,
        old: Interface,
        new: Interface,
    ) -> Result<Notify, Status> {
        let protocol = self.protocol_mut(handle, guid).map_err(|e| {
            if e == Status::UNSUPPORTED {
                Status::NOT_FOUND
            } else {
                e
            }
        })?;
        if protocol.interface != old {
            return Err(Status::NOT_FOUND);
        }
        // §7.3.4: an interface still held by a driver or by a child
        // controller after the disconnect cannot be replaced under it.
        let held =
            OPEN_PROTOCOL_BY_DRIVER | OPEN_PROTOCOL_EXCLUSIVE | OPEN_PROTOCOL_BY_CHILD_CONTROLLER;
        if protocol.opens.iter().any(|o| o.attributes & held != 0) {
            return Err(Status::ACCESS_DENIED);
        }
        protocol.interface = new;
        Ok(self.notify(handle, guid))
    }

    /// HandleProtocol: the interface, EFI_UNSUPPORTED when absent.
    pub fn get(&self, handle: HandleId, guid: &Guid) -> Result<Interface, Status> {
        self.protocols(handle)?
            .iter()
            .find(|p| p.guid == *guid)
            .map(|p| p.interface)
            .ok_or(Status::UNSUPPORTED)
    }

    /// OpenProtocol (§7.3.9). Returns the interface (NULL for TEST_PROTOCOL).
    pub fn open(
        &mut self,
        handle: HandleId,
        guid: &Guid,
        agent: HandleId,
        controller: HandleId,
        attributes: u32,
    ) -> Result<Interface, Status> {
        let needs_agent =
            OPEN_PROTOCOL_BY_CHILD_CONTROLLER | OPEN_PROTOCOL_BY_DRIVER | OPEN_PROTOCOL_EXCLUSIVE;
        let needs_controller = OPEN_PROTOCOL_BY_CHILD_CONTROLLER | OPEN_PROTOCOL_BY_DRIVER;
        let valid = [
            OPEN_PROTOCOL_BY_HANDLE_PROTOCOL,
            OPEN_PROTOCOL_GET_PROTOCOL,
            OPEN_PROTOCOL_TEST_PROTOCOL,
            OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
            OPEN_PROTOCOL_BY_DRIVER,
            OPEN_PROTOCOL_BY_DRIVER | OPEN_PROTOCOL_EXCLUSIVE,
            OPEN_PROTOCOL_EXCLUSIVE,
        ];
        if !valid.contains(&attributes) || !self.is_handle(handle) {
            return Err(Status::INVALID_PARAMETER);
        }
        if attributes & needs_agent != 0 && !self.is_handle(agent) {
            return Err(Status::INVALID_PARAMETER);
        }
        if attributes & needs_controller != 0 && !self.is_handle(controller) {
            return Err(Status::INVALID_PARAMETER);
        }
        if attributes == OPEN_PROTOCOL_BY_CHILD_CONTROLLER && handle == controller {
            return Err(Status::INVALID_PARAMETER);
        }
        let protocol = self.protocol_mut(handle, guid)?;
        let interface = protocol.interface;
        let conflict = open_conflict(&protocol.opens, agent, attributes);
        if let Some(status) = conflict {
            return Err(status);
        }
        // Every open is recorded, TEST_PROTOCOL included (§7.3.9: the open
        // list is what CloseProtocol, OpenProtocolInformation and image
        // unloading work from), except one without an agent: nothing could
        // ever close it.
        if agent.is_null() {
            return Ok(result_of(attributes, interface));
        }
        match protocol
            .opens
            .iter_mut()
            .find(|o| o.agent == agent && o.controller == controller && o.attributes == attributes)
        {
            Some(open) => open.count = open.count.saturating_add(1),
            None => protocol.opens.push(OpenInfo {
                agent,
                controller,
                attributes,
                count: 1,
            }),
        }
        Ok(result_of(attributes, interface))
    }

    /// CloseProtocol (§7.3.10).
    pub fn close(
        &mut self,
        handle: HandleId,
        guid: &Guid,
        agent: HandleId,
        controller: HandleId,
    ) -> Result<(), Status> {
        if !self.is_handle(handle)
            || !self.is_handle(agent)
            || (!controller.is_null() && !self.is_handle(controller))
        {
            return Err(Status::INVALID_PARAMETER);
        }
        let protocol = self.protocol_mut(handle, guid).map_err(|e| {
            if e == Status::UNSUPPORTED {
                Status::NOT_FOUND
            } else {
                e
            }
        })?;
        let before = protocol.opens.len();
        protocol
            .opens
            .retain(|o| !(o.agent == agent && o.controller == controller));
        if protocol.opens.len() == before {
            return Err(Status::NOT_FOUND);
        }
        Ok(())
    }

    pub fn open_information(&self, handle: HandleId, guid: &Guid) -> Result<Vec<OpenInfo>, Status> {
        self.protocols(handle)?
            .iter()
            .find(|p| p.guid == *guid)
            .map(|p| p.opens.clone())
            .ok_or(Status::NOT_FOUND)
    }

    /// The agents holding `interface` (the installed `guid` on `handle`)
    /// open BY_DRIVER: the drivers UninstallProtocolInterface must
    /// disconnect first (§7.3.3), or, for any interface of `guid` when
    /// `interface` is None, the ones an EXCLUSIVE open must (§7.3.9).
    pub fn by_driver_agents(
        &self,
        handle: HandleId,
        guid: &Guid,
        interface: Option<Interface>,
    ) -> Result<Vec<HandleId>, Status> {
        let protocol = self
            .protocols(handle)?
            .iter()
            .find(|p| p.guid == *guid && interface.is_none_or(|i| i == p.interface))
            .ok_or(Status::NOT_FOUND)?;
        let mut agents = Vec::new();
        for open in &protocol.opens {
            if open.attributes & OPEN_PROTOCOL_BY_DRIVER != 0 && !agents.contains(&open.agent) {
                agents.push(open.agent);
            }
        }
        Ok(agents)
    }

    /// The drivers managing `controller`: agents holding any of its
    /// protocols BY_DRIVER (§7.3.13), without repeats, in order of discovery.
    pub fn managing_drivers(&self, controller: HandleId) -> Result<Vec<HandleId>, Status> {
        let mut agents = Vec::new();
        for protocol in self.protocols(controller)? {
            for open in &protocol.opens {
                if open.attributes & OPEN_PROTOCOL_BY_DRIVER != 0 && !agents.contains(&open.agent) {
                    agents.push(open.agent);
                }
            }
        }
        Ok(agents)
    }

    /// The children of `controller` (of `driver` only, when given): the
    /// controller handles named by BY_CHILD_CONTROLLER opens of its
    /// protocols (§7.3.9, §7.3.13), without repeats, in order of discovery.
    pub fn children(&self, controller: HandleId, driver: Option<HandleId>) -> Vec<HandleId> {
        let mut children = Vec::new();
        let Ok(protocols) = self.protocols(controller) else {
            return children;
        };
        for protocol in protocols {
            for open in &protocol.opens {
                if open.attributes & OPEN_PROTOCOL_BY_CHILD_CONTROLLER != 0
                    && driver.is_none_or(|d| d == open.agent)
                    && self.is_handle(open.controller)
                    && !children.contains(&open.controller)
                {
                    children.push(open.controller);
                }
            }
        }
        children
    }

    pub fn protocols_per_handle(&self, handle: HandleId) -> Result<Vec<Guid>, Status> {
        Ok(self.protocols(handle)?.iter().map(|p| p.guid).collect())
    }

    /// All handles in creation order.
    pub fn all_handles(&self) -> Vec<HandleId> {
        self.order.clone()
    }

    /// Handles carrying `guid`, in creation order.
    pub fn handles_with(&self, guid: &Guid) -> Vec<HandleId> {
        self.order
            .iter()
            .copied()
            .filter(|h| {
                self.handles
                    .get(h)
                    .is_some_and(|p| p.iter().any(|p| p.guid == *guid))
            })
            .collect()
    }

    /// RegisterProtocolNotify: `key` is a fresh value naming the registration.
    pub fn register_notify(&mut self, guid: Guid, event: EventId, key: Registration) {
        self.registrations.insert(
            key,
            NotifyRegistration {
                guid,
                event,
                pending: Vec::new(),
            },
        );
    }

    /// Forgets registrations tied to a closed event.
    pub fn unregister_event(&mut self, event: EventId) {
        self.registrations.retain(|_, r| r.event != event);
    }

    pub fn is_registration(&self, key: Registration) -> bool {
        self.registrations.contains_key(&key)
    }

    /// LocateHandle(ByRegisterNotify): the next handle that gained the
    /// protocol since the last call, one at a time (§7.3.15).
    pub fn next_notified(&mut self, key: Registration) -> Result<Option<(HandleId, Guid)>, Status> {
        let r = self
            .registrations
            .get_mut(&key)
            .ok_or(Status::INVALID_PARAMETER)?;
        if r.pending.is_empty() {
            return Ok(None);
        }
        Ok(Some((r.pending.remove(0), r.guid)))
    }

    /// Removes a handle and everything on it (image unload).
    pub fn remove_handle(&mut self, handle: HandleId) {
        self.handles.remove(&handle);
        self.order.retain(|&h| h != handle);
        for r in self.registrations.values_mut() {
            r.pending.retain(|&h| h != handle);
        }
        // Drop open records naming the handle as agent or controller.
        for protocols in self.handles.values_mut() {
            for p in protocols.iter_mut() {
                p.opens
                    .retain(|o| o.agent != handle && o.controller != handle);
            }
        }
    }
}

/// What OpenProtocol hands back: the interface, or NULL for TEST_PROTOCOL.
fn result_of(attributes: u32, interface: Interface) -> Interface {
    if attributes == OPEN_PROTOCOL_TEST_PROTOCOL {
        Interface::NULL
    } else {
        interface
    }
}

/// The error an open with `attributes` by `agent` meets among the existing
/// `opens`, per the attribute table of §7.3.9:
/// - BY_DRIVER (alone or with EXCLUSIVE) already held by the same agent with
///   the same attributes: EFI_ALREADY_STARTED (the caller still gets the
///   interface);
/// - BY_DRIVER while anyone holds it BY_DRIVER or EXCLUSIVE: EFI_ACCESS_DENIED;
/// - EXCLUSIVE (alone or with BY_DRIVER) while anyone, the same agent
///   included, holds it EXCLUSIVE: EFI_ACCESS_DENIED;
/// - EXCLUSIVE while others hold it only BY_DRIVER: EFI_ACCESS_DENIED here;
///   the protocol services disconnect those drivers and try again.
///
/// GET_PROTOCOL, BY_HANDLE_PROTOCOL, TEST_PROTOCOL and BY_CHILD_CONTROLLER
/// never conflict.
fn open_conflict(opens: &[OpenInfo], agent: HandleId, attributes: u32) -> Option<Status> {
    let wants_driver = attributes & OPEN_PROTOCOL_BY_DRIVER != 0;
    let wants_exclusive = attributes & OPEN_PROTOCOL_EXCLUSIVE != 0;
    if !wants_driver && !wants_exclusive {
        return None;
    }
    if wants_driver
        && opens
            .iter()
            .any(|o| o.agent == agent && o.attributes == attributes)
    {
        return Some(Status::ALREADY_STARTED);
    }
    let held_exclusive = opens
        .iter()
        .any(|o| o.attributes & OPEN_PROTOCOL_EXCLUSIVE != 0);
    let held_by_driver = opens
        .iter()
        .any(|o| o.attributes & OPEN_PROTOCOL_BY_DRIVER != 0);
    if held_exclusive || held_by_driver {
        return Some(Status::ACCESS_DENIED);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use uefi_raw::guid;

    const A: Guid = guid!("00000001-0002-0003-0405-060606060606");
    const B: Guid = guid!("00000007-0002-0003-0405-060606060606");

    fn h(value: usize) -> HandleId {
        HandleId::from_value(value)
    }

    fn i(value: usize) -> Interface {
        Interface::from_value(value)
    }

    fn db() -> HandleDb {
        let mut db = HandleDb::new();
        for value in [0x10, 0x20, 0x30] {
            db.create_handle(h(value));
        }
        db
    }

    #[test]
    fn install_get_uninstall() {
        let mut db = db();
        let _ = db.install(h(0x10), A, i(0x1000)).unwrap();
        assert_eq!(
            db.install(h(0x10), A, i(0x2000)).err(),
            Some(Status::INVALID_PARAMETER)
        );
        assert_eq!(db.get(h(0x10), &A), Ok(i(0x1000)));
        assert_eq!(db.get(h(0x10), &B), Err(Status::UNSUPPORTED));
        assert_eq!(db.get(h(0x99), &A), Err(Status::INVALID_PARAMETER));
        assert_eq!(db.handles_with(&A), vec![h(0x10)]);
        assert_eq!(db.uninstall(h(0x10), &A, i(0x2000)), Err(Status::NOT_FOUND));
        db.uninstall(h(0x10), &A, i(0x1000)).unwrap();
        assert!(
            !db.is_handle(h(0x10)),
            "handle without protocols disappears"
        );
    }

    #[test]
    fn open_attribute_rules() {
        let mut db = db();
        let _ = db.install(h(0x10), A, i(0x1000)).unwrap();
        assert_eq!(
            db.open(h(0x10), &A, h(0x20), h(0x10), OPEN_PROTOCOL_GET_PROTOCOL),
            Ok(i(0x1000))
        );
        assert_eq!(
            db.open(h(0x10), &A, h(0x20), h(0x10), OPEN_PROTOCOL_TEST_PROTOCOL),
            Ok(Interface::NULL)
        );
        assert_eq!(
            db.open(h(0x10), &B, h(0x20), h(0x10), OPEN_PROTOCOL_TEST_PROTOCOL),
            Err(Status::UNSUPPORTED)
        );
        assert_eq!(
            db.open(h(0x10), &A, h(0x99), h(0x10), OPEN_PROTOCOL_BY_DRIVER),
            Err(Status::INVALID_PARAMETER)
        );
        assert_eq!(
            db.open(h(0x10), &A, h(0x20), h(0x10), 0x40),
            Err(Status::INVALID_PARAMETER)
        );
        assert_eq!(
            db.open(h(0x10), &A, h(0x20), h(0x10), OPEN_PROTOCOL_BY_DRIVER),
            Ok(i(0x1000))
        );
        assert_eq!(
            db.open(h(0x10), &A, h(0x20), h(0x10), OPEN_PROTOCOL_BY_DRIVER),
            Err(Status::ALREADY_STARTED)
        );
        assert_eq!(
            db.open(h(0x10), &A, h(0x30), h(0x10), OPEN_PROTOCOL_BY_DRIVER),
            Err(Status::ACCESS_DENIED)
        );
        assert_eq!(
            db.open(h(0x10), &A, h(0x30), h(0x10), OPEN_PROTOCOL_EXCLUSIVE),
            Err(Status::ACCESS_DENIED)
        );
        assert_eq!(
            db.uninstall(h(0x10), &A, i(0x1000)),
            Err(Status::ACCESS_DENIED)
        );
        let info = db.open_information(h(0x10), &A).unwrap();
        assert_eq!(info.len(), 3, "GET_PROTOCOL, TEST_PROTOCOL and BY_DRIVER");
        db.close(h(0x10), &A, h(0x20), h(0x10)).unwrap();
        assert_eq!(
            db.close(h(0x10), &A, h(0x20), h(0x10)),
            Err(Status::NOT_FOUND)
        );
        assert!(db.open_information(h(0x10), &A).unwrap().is_empty());
        db.uninstall(h(0x10), &A, i(0x1000)).unwrap();
    }

    #[test]
    fn driver_relationships_come_from_open_records() {
        let mut db = db();
        for value in [0x40, 0x50] {
            db.create_handle(h(value));
        }
        // 0x10: a disk; 0x20: a bus driver; 0x30, 0x40: its children;
        // 0x50: a second driver that also asks for the disk.
        let _ = db.install(h(0x10), A, i(0x1000)).unwrap();
        let _ = db.install(h(0x10), B, i(0x2000)).unwrap();
        for child in [0x30, 0x40] {
            let _ = db.install(h(child), A, i(child)).unwrap();
        }
        assert_eq!(db.managing_drivers(h(0x10)), Ok(vec![]));
        db.open(h(0x10), &A, h(0x20), h(0x10), OPEN_PROTOCOL_BY_DRIVER)
            .unwrap();
        db.open(h(0x10), &B, h(0x20), h(0x10), OPEN_PROTOCOL_BY_DRIVER)
            .unwrap();
        db.open(h(0x10), &B, h(0x50), h(0x10), OPEN_PROTOCOL_GET_PROTOCOL)
            .unwrap();
        for child in [0x30, 0x40, 0x30] {
            db.open(
                h(0x10),
                &A,
                h(0x20),
                h(child),
                OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
            )
            .unwrap();
        }
        assert_eq!(db.managing_drivers(h(0x10)), Ok(vec![h(0x20)]));
        assert_eq!(db.managing_drivers(h(0x99)), Err(Status::INVALID_PARAMETER));
        assert_eq!(db.children(h(0x10), None), vec![h(0x30), h(0x40)]);
        assert_eq!(db.children(h(0x10), Some(h(0x20))), vec![h(0x30), h(0x40)]);
        assert_eq!(db.children(h(0x10), Some(h(0x50))), vec![]);
        assert_eq!(
            db.by_driver_agents(h(0x10), &A, Some(i(0x1000))),
            Ok(vec![h(0x20)])
        );
        assert_eq!(db.by_driver_agents(h(0x10), &A, None), Ok(vec![h(0x20)]));
        assert_eq!(
            db.by_driver_agents(h(0x10), &A, Some(i(0x2000))),
            Err(Status::NOT_FOUND)
        );

        // A child's open keeps the parent's protocol installed (§7.3.3)
        // until the driver closes it; a vanished child is no child.
        db.close(h(0x10), &A, h(0x20), h(0x10)).unwrap();
        assert_eq!(
            db.uninstall(h(0x10), &A, i(0x1000)),
            Err(Status::ACCESS_DENIED)
        );
        db.remove_handle(h(0x40));
        assert_eq!(db.children(h(0x10), None), vec![h(0x30)]);
        db.close(h(0x10), &A, h(0x20), h(0x30)).unwrap();
        db.uninstall(h(0x10), &A, i(0x1000)).unwrap();
        assert_eq!(
            db.managing_drivers(h(0x10)),
            Ok(vec![h(0x20)]),
            "B is still open"
        );
    }

    #[test]
    fn register_notify_queues_new_handles() {
        let mut db = db();
        db.register_notify(
            A,
            EventId::from_value(0x500),
            Registration::from_value(0x600),
        );
        let notify = db.install(h(0x20), A, i(1)).unwrap();
        assert_eq!(notify.0, vec![EventId::from_value(0x500)]);
        let _ = db.install(h(0x30), A, i(2)).unwrap();
        let _ = db.install(h(0x30), B, i(3)).unwrap();
        assert_eq!(
            db.next_notified(Registration::from_value(0x600)),
            Ok(Some((h(0x20), A)))
        );
        assert_eq!(
            db.next_notified(Registration::from_value(0x600)),
            Ok(Some((h(0x30), A)))
        );
        assert_eq!(db.next_notified(Registration::from_value(0x600)), Ok(None));
        assert_eq!(
            db.next_notified(Registration::from_value(0x601)),
            Err(Status::INVALID_PARAMETER)
        );
        let notify = db.reinstall(h(0x30), &A, i(2), i(4)).unwrap();
        assert_eq!(notify.0, vec![EventId::from_value(0x500)]);
        assert_eq!(db.get(h(0x30), &A), Ok(i(4)));
        assert_eq!(
            db.reinstall(h(0x30), &A, i(2), i(5)).err(),
            Some(Status::NOT_FOUND)
        );
    }

    #[test]
    fn create_handle_keeps_existing_protocols() {
        let mut db = db();
        let _ = db.install(h(0x10), A, i(1)).unwrap();
        db.create_handle(h(0x10));
        assert_eq!(db.get(h(0x10), &A), Ok(i(1)));
    }

    #[test]
    fn all_handles_keeps_creation_order() {
        let mut db = db();
        let _ = db.install(h(0x30), A, i(1)).unwrap();
        let _ = db.install(h(0x10), A, i(1)).unwrap();
        assert_eq!(db.all_handles(), vec![h(0x10), h(0x20), h(0x30)]);
        assert_eq!(db.handles_with(&A), vec![h(0x10), h(0x30)]);
        assert_eq!(db.protocols_per_handle(h(0x30)), Ok(vec![A]));
        db.remove_handle(h(0x30));
        assert_eq!(db.handles_with(&A), vec![h(0x10)]);
    }

    #[test]
    fn test_protocol_opens_are_recorded_and_closed_with_their_agent() {
        // UEFI 2.10 §7.3.9/§7.3.10: a TEST_PROTOCOL open is on the open list,
        // CloseProtocol removes it, and unloading the agent drops it (§7.4.3).
        let mut db = db();
        let _ = db.install(h(0x10), A, i(0x1000)).unwrap();
        assert_eq!(
            db.open(h(0x10), &A, h(0x20), h(0x30), OPEN_PROTOCOL_TEST_PROTOCOL),
            Ok(Interface::NULL)
        );
        let info = db.open_information(h(0x10), &A).unwrap();
        assert_eq!(
            info,
            vec![OpenInfo {
                agent: h(0x20),
                controller: h(0x30),
                attributes: OPEN_PROTOCOL_TEST_PROTOCOL,
                count: 1,
            }]
        );
        db.close(h(0x10), &A, h(0x20), h(0x30)).unwrap();
        assert_eq!(
            db.close(h(0x10), &A, h(0x20), h(0x30)),
            Err(Status::NOT_FOUND)
        );
        db.open(
            h(0x10),
            &A,
            h(0x20),
            HandleId::NULL,
            OPEN_PROTOCOL_TEST_PROTOCOL,
        )
        .unwrap();
        db.remove_handle(h(0x20));
        assert!(db.open_information(h(0x10), &A).unwrap().is_empty());
        // An open without an agent could never be closed: not recorded.
        db.open(
            h(0x10),
            &A,
            HandleId::NULL,
            HandleId::NULL,
            OPEN_PROTOCOL_GET_PROTOCOL,
        )
        .unwrap();
        assert!(db.open_information(h(0x10), &A).unwrap().is_empty());
    }

    #[test]
    fn exclusive_open_attribute_table() {
        // UEFI 2.10 §7.3.9: ALREADY_STARTED is for BY_DRIVER requests the same
        // agent already holds; a second EXCLUSIVE is denied, whoever asks.
        let mut db = db();
        let _ = db.install(h(0x10), A, i(0x1000)).unwrap();
        let _ = db.install(h(0x10), B, i(0x2000)).unwrap();
        db.open(h(0x10), &A, h(0x20), h(0x30), OPEN_PROTOCOL_EXCLUSIVE)
            .unwrap();
        for agent in [0x20, 0x30] {
            for attributes in [
                OPEN_PROTOCOL_EXCLUSIVE,
                OPEN_PROTOCOL_BY_DRIVER,
                OPEN_PROTOCOL_BY_DRIVER | OPEN_PROTOCOL_EXCLUSIVE,
            ] {
                assert_eq!(
                    db.open(h(0x10), &A, h(agent), h(0x30), attributes),
                    Err(Status::ACCESS_DENIED),
                    "agent {agent:#x} attributes {attributes:#x}"
                );
            }
            for attributes in [
                OPEN_PROTOCOL_GET_PROTOCOL,
                OPEN_PROTOCOL_TEST_PROTOCOL,
                OPEN_PROTOCOL_BY_HANDLE_PROTOCOL,
            ] {
                assert!(db.open(h(0x10), &A, h(agent), h(0x30), attributes).is_ok());
            }
        }
        let both = OPEN_PROTOCOL_BY_DRIVER | OPEN_PROTOCOL_EXCLUSIVE;
        db.open(h(0x10), &B, h(0x20), h(0x10), both).unwrap();
        assert_eq!(
            db.open(h(0x10), &B, h(0x20), h(0x10), both),
            Err(Status::ALREADY_STARTED)
        );
        assert_eq!(
            db.open(h(0x10), &B, h(0x30), h(0x10), both),
            Err(Status::ACCESS_DENIED)
        );
        assert_eq!(
            db.open(h(0x10), &B, h(0x20), h(0x10), OPEN_PROTOCOL_EXCLUSIVE),
            Err(Status::ACCESS_DENIED)
        );
        assert_eq!(
            db.open(h(0x10), &B, h(0x20), h(0x10), OPEN_PROTOCOL_BY_DRIVER),
            Err(Status::ACCESS_DENIED)
        );
    }

    #[test]
    fn reinstall_refuses_an_interface_held_by_a_child() {
        // UEFI 2.10 §7.3.4: EFI_ACCESS_DENIED, the old interface stays.
        let mut db = db();
        let _ = db.install(h(0x10), A, i(0x1000)).unwrap();
        db.open(
            h(0x10),
            &A,
            h(0x20),
            h(0x30),
            OPEN_PROTOCOL_BY_CHILD_CONTROLLER,
        )
        .unwrap();
        assert_eq!(
            db.reinstall(h(0x10), &A, i(0x1000), i(0x2000)).err(),
            Some(Status::ACCESS_DENIED)
        );
        assert_eq!(db.get(h(0x10), &A), Ok(i(0x1000)));
        db.close(h(0x10), &A, h(0x20), h(0x30)).unwrap();
        let _ = db.reinstall(h(0x10), &A, i(0x1000), i(0x2000)).unwrap();
        assert_eq!(db.get(h(0x10), &A), Ok(i(0x2000)));
    }

    #[test]
    fn closed_event_loses_its_registrations() {
        let mut db = db();
        let event = EventId::from_value(0x500);
        db.register_notify(A, event, Registration::from_value(0x600));
        db.unregister_event(event);
        assert!(!db.is_registration(Registration::from_value(0x600)));
        assert!(db.install(h(0x20), A, i(1)).unwrap().0.is_empty());
    }
}
