//! `opsdeck demo`: a demo directory with a real git app and a config.
