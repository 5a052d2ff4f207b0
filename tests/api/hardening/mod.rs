//! What an attacker tried that held only after issue 13: the throttle under
//! concurrency, proxy addresses, writes without signing in, shared devices,
//! the last administrator, look-alike usernames, 5xx where nothing is down,
//! bodiless errors, cacheable tokens, and the small ones.

mod addresses;
mod administrators;
mod answers;
mod throttle;
mod usernames;
