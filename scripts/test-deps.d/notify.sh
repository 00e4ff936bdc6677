# Desktop warnings (notify/, agent/localapi, cmd/mamori notify): a private
# session bus (dbus-daemon), a real notification daemon (dunst) on a
# virtual X display (Xvfb) and xwd to take the screenshot; useradd comes
# with Debian's base (passwd). fonts-ipafont-gothic (Japanese glyphs) is
# in scripts/test-deps.sh already.
have dbus-daemon || need+=(dbus-daemon)
have Xvfb || need+=(xvfb)
have dunst || need+=(dunst)
have xwd || need+=(x11-apps)
have useradd || need+=(passwd)
