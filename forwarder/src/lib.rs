//! tracehose forwarder library.
pub mod subscribe;
