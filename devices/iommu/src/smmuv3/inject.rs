//! Test hook: [`Smmuv3::inject_event`] makes the next translations of a stream fail with a chosen
//! event, raised and recorded exactly like a real one (event queue record, EVTQ MSI, counters).

use super::events::injectable;
use super::state::State;
use super::Smmuv3;

impl State {
    /// Consumes one armed injection for `sid`.
    pub fn take_injection(&mut self, sid: u32) -> Option<u8> {
        let (id, left) = self.injections.get_mut(&sid)?;
        let id = *id;
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.injections.remove(&sid);
        }
        Some(id)
    }
}

impl Smmuv3 {
    /// The next `count` translations of `sid` (any SubstreamID) fail with event `event_id` (an event
    /// number this model raises: C_BAD_STREAMID .. F_PERMISSION), whatever the tables say; the event
    /// carries the transaction's own SID, SSID, address and direction. `count` 0 disarms; an event
    /// number the model does not raise is ignored. [`Smmuv3::lookup`] neither sees nor consumes it.
    pub fn inject_event(&self, sid: u32, event_id: u8, count: u32) {
        let mut st = self.lock();
        if count == 0 {
            st.injections.remove(&sid);
        } else if injectable(event_id) {
            st.injections.insert(sid, (event_id, count));
        } else {
            log::warn!("smmuv3: event {event_id:#x} cannot be injected");
        }
    }
}
