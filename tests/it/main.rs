//! kubepki's integration tests: one binary, one module per subject.

mod support;

mod approve;
mod audit;
mod cli;
mod description;
mod etcd;
mod external;
mod golden;
mod hardening;
mod kubectl;
mod lifecycle;
mod scale;
mod verify;
