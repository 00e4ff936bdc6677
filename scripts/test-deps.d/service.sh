# The service tests (internal/svc, cmd/mamori, cmd/mamori-hub service
# lifecycle): service(8) runs the SysV init scripts and start-stop-daemon(8)
# starts and stops the daemons where systemd is not PID 1; systemctl and
# systemd-analyze write and verify the systemd unit (systemd need not run).
have service || need+=(init-system-helpers)
have start-stop-daemon || need+=(dpkg)
have systemd-analyze || need+=(systemd)
