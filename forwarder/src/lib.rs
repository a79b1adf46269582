//! tracehose forwarder library.
