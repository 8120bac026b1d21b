//! kubepki's integration tests: one binary, one module per subject.

mod support;

mod approve;
mod audit;
mod cli;
mod description;
mod endpoint;
mod etcd;
mod explain;
mod external;
mod fixes;
mod golden;
mod kubectl;
mod lifecycle;
mod scale;
mod tools;
mod verify;
mod wiring;
