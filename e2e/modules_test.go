//go:build e2e

package e2e

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// guestModules are the modules the guest loads, top level; their
// dependencies are added from each module's .modinfo. The crypto providers
// come first: crc-t10dif (needed by sd_mod) looks its algorithm up at load
// time, which no symbol dependency expresses.
var guestModules = []string{
	"crc64_rocksoft_generic", "crct10dif_generic",
	"xhci_pci", "usb_storage", "uas", "sd_mod",
	"vfat", "nls_cp437", "nls_iso8859_1", "nls_ascii", "nls_utf8",
	"usbhid", "hid_generic", "cdc_ether", "rndis_host", "ftdi_sio", "cdc_acm",
	"dummy_hcd", "libcomposite", "usb_f_mass_storage", "usb_f_hid",
}

// moduleName normalises a module name the way the kernel does ("-" → "_").
func moduleName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// indexModules maps module name to its .ko path under modDir.
func indexModules(modDir string) (map[string]string, error) {
	idx := map[string]string{}
	err := filepath.WalkDir(modDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			idx[moduleName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", modDir, err)
	}
	return idx, nil
}

// modinfoDepends reads the depends= field of a module's .modinfo section.
func modinfoDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read %s .modinfo: %w", path, err)
	}
	return parseModinfoDepends(data), nil
}

// parseModinfoDepends extracts the comma-separated depends= list from the
// NUL-separated key=value strings of a .modinfo section.
func parseModinfoDepends(data []byte) []string {
	var deps []string
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			if d = strings.TrimSpace(d); d != "" {
				deps = append(deps, moduleName(d))
			}
		}
	}
	return deps
}

// module is one .ko to load, in order.
type module struct {
	Name string
	Path string // host path of the .ko
}

// resolveModules returns want and all their dependencies in an order that
// loads every dependency before its users, keeping want's order otherwise.
// Modules built into this kernel (absent from the tree) must be listed in
// modules.builtin; anything else missing is an error.
func resolveModules(modDir string, want []string) ([]module, error) {
	idx, err := indexModules(modDir)
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if b, err := readFileString(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, l := range strings.Split(b, "\n") {
			if l != "" {
				builtin[moduleName(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
			}
		}
	}
	var out []module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " → "))
		}
		path, ok := idx[name]
		if !ok {
			if builtin[name] {
				state[name] = 2
				return nil
			}
			return fmt.Errorf("module %s (needed by %s) not in %s", name, strings.Join(chain, " → "), modDir)
		}
		state[name] = 1
		deps, err := modinfoDepends(path)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, module{Name: name, Path: path})
		return nil
	}
	for _, w := range want {
		if err := visit(moduleName(w), nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func readFileString(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
