//! kubepki's integration tests: one binary, one module per subject.

mod support;

mod cli;
mod etcd;
mod golden;
mod kubectl;
mod lifecycle;
mod verify;
