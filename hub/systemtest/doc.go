// Package systemtest holds mamori-hub's system tests and benchmarks, with
// real parts only: the mamori and mamori-hub binaries (built once per test
// run), HTTP on loopback, SQLite files and a private PostgreSQL cluster
// (package pgtest). They prove that events are neither lost nor stored
// twice when an agent or the hub is killed, a reply is lost, or the hub is
// down while events queue up; that the hub weathers a reconnect storm;
// and they measure ingest, heartbeats and the violation-to-row latency.
// The package has no code of its own outside its tests.
package systemtest
