//! kubepki's integration tests: one binary, one module per subject.

mod support;

mod approve;
mod audit;
mod backup;
mod cli;
mod cross;
mod description;
mod endpoint;
mod etcd;
mod explain;
mod external;
mod external_ca;
mod filters;
mod fixes;
mod golden;
mod hardening;
mod hardening_day2;
mod json;
mod kill;
mod kubectl;
mod lifecycle;
mod lock;
mod metrics_server;
mod report;
mod rollout;
mod scale;
mod tools;
mod verify;
mod wiring;
