//! kubepki's integration tests: one binary, one module per subject.

mod support;

mod approve;
mod audit;
mod backup;
mod cli;
mod cross;
mod description;
mod etcd;
mod external;
mod external_ca;
mod golden;
mod kill;
mod kubectl;
mod lifecycle;
mod lock;
mod rollout;
mod scale;
mod verify;
