// Package msi holds no code: this directory is the Windows installer of
// the agent, mamori.wxs (WiX v3, built by Debian's wixl through
// scripts/msi.sh and `make package`), and mamori.yaml, the example config
// it installs as C:\Program Files\mamori\mamori.yaml. Its Go tests build
// the MSI and check its tables with msiinfo (Linux, with msitools), and
// install, upgrade and remove it with msiexec under Wine 8.0
// (msi_windows_test.go, driven from the Linux test).
package msi
