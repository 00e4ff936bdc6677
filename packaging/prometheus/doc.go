// Package prometheus holds no code: this directory is mamori's Prometheus
// alerting rules (mamori-agent.rules.yml, mamori-hub.rules.yml) and their
// promtool unit tests. Its Go tests check the rules with promtool, hold
// them and the Grafana dashboards in ../grafana against mamori's kinds
// table, and run every dashboard query and alert expression against a
// real Prometheus scraping a real agent and hub (Linux, root).
package prometheus
