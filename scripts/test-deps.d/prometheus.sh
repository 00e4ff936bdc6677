# packaging/prometheus: promtool (check and unit-test the alert rules) and
# the prometheus server itself (the dashboard-query test scrapes a real
# agent and hub with it). Debian's prometheus package ships both; its
# service is not started (test-deps.sh installs with a policy-rc.d).
have prometheus || need+=(prometheus)
have promtool || need+=(prometheus)
