# scripts/package-test.sh (make package-test): lintian checks the .debs,
# rpm reads the .rpms, systemd-analyze verifies and scores the units, and
# systemd itself runs as PID 1 of the sandbox (Debian's systemd package;
# it need not run on this machine); unshare, nsenter, setpriv and runuser
# make and enter the sandboxes, losetup a loop device standing in for a
# USB disk, curl asks the agent and the hub; adduser is mamori-hub's
# dependency, installed in the sandbox from this machine's copy.
have lintian || need+=(lintian)
have rpm || need+=(rpm)
have systemd-analyze || need+=(systemd)
[ -x /lib/systemd/systemd ] || need+=(systemd)
have dpkg-deb || need+=(dpkg)
have unshare || need+=(util-linux)
have nsenter || need+=(util-linux)
have setpriv || need+=(util-linux)
have runuser || need+=(util-linux)
have losetup || need+=(mount)
have curl || need+=(curl)
dpkg -s adduser >/dev/null 2>&1 || need+=(adduser)
# The desktop a warning reaches in the systemd sandbox: a session bus, an
# X server and a notification daemon run as a user, a utmp record written
# with python3, a veth pair for the unapproved network.
have dbus-daemon || need+=(dbus-daemon)
have dbus-send || need+=(dbus-bin)
have Xvfb || need+=(xvfb)
have dunst || need+=(dunst)
have python3 || need+=(python3)
have useradd || need+=(passwd)
have pgrep || need+=(procps)
have ip || need+=(iproute2)
