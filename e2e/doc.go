//go:build e2e

// Package e2e proves mamori against a real Linux kernel: it boots Debian's
// kernel under QEMU with an initramfs holding busybox, the USB modules and
// a static mamori, plugs emulated USB devices over QMP (and configfs
// gadgets on dummy_hcd inside the guest), and asserts on what `mamori run`
// recorded in its audit log and served as metrics.
//
// Everything here is behind the e2e build tag: `make e2e` runs
// `go test -tags e2e ./e2e/`. See README.md in this directory.
package e2e
