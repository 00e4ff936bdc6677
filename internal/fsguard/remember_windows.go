package fsguard

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// The alternate folder in use, remembered where users cannot write.
//
// findAlternate judges only the newest maxAlternates names that look like
// alternates, since anyone may make such names in %ProgramData% and each
// costs an open. A user who holds the squatted state folder and then
// makes more folders so named, with later times in their names, would
// push the agent's own alternate out of what is judged, so that every
// start made a new alternate (a new audit log, the hub seeing the chain
// start again). So the alternate the agent records in is also written to
// the registry, under HKLM\SOFTWARE\mamori\StateAlternates (a value named
// by the configured folder's path, lower case, whose data is the
// alternate's path), where only administrators and SYSTEM may write
// (HKLM\SOFTWARE's own ACL gives Users read only). findAlternate judges
// that folder first, whatever the names beside it; the value is removed
// once the alternate is back in the configured folder's place. The key
// is used only when its owner is trusted and no one else may change it
// (judgeSD), and the folder it names only when it is beside the
// configured folder, named like its alternate and judged the agent's own
// (decideFolder), as any other.

// alternatesKey is the registry key, under HKEY_LOCAL_MACHINE, of the
// remembered alternate folders.
var alternatesKey = `SOFTWARE\mamori\StateAlternates`

// keyCreateLink is KEY_CREATE_LINK (winnt.h): a symbolic link below the
// key could point a reader elsewhere.
const keyCreateLink = 0x20

// rememberedAlternate returns the alternate folder remembered for the
// state folder abs (its base name base): the registry value's path when
// the key is trusted and the path is an alternate's name beside abs. ""
// with a nil error when nothing is remembered; an error when the key is
// not to be trusted or the value is not an alternate of abs (nothing is
// used then).
func rememberedAlternate(abs, base string, t trustSet) (string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, alternatesKey, registry.QUERY_VALUE|windows.READ_CONTROL)
	if errors.Is(err, registry.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf(`open HKLM\%s: %w`, alternatesKey, err)
	}
	defer k.Close()
	if err := judgeKey(k, t); err != nil {
		return "", err
	}
	v, _, err := k.GetStringValue(strings.ToLower(abs))
	if errors.Is(err, registry.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf(`HKLM\%s value %q: %w`, alternatesKey, strings.ToLower(abs), err)
	}
	if !strings.EqualFold(filepath.Dir(v), filepath.Dir(abs)) || !isAlternateName(base, filepath.Base(v)) {
		return "", fmt.Errorf(`HKLM\%s value %q: %q is not an alternate folder beside %s`, alternatesKey, strings.ToLower(abs), v, abs)
	}
	return v, nil
}

// rememberAlternate writes alt as the alternate folder in use for the
// state folder abs, creating the key when it is missing; a key that is
// not to be trusted is not written.
func rememberAlternate(abs, alt string, t trustSet) error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, alternatesKey, registry.QUERY_VALUE|registry.SET_VALUE|windows.READ_CONTROL)
	if err != nil {
		return fmt.Errorf(`create HKLM\%s: %w`, alternatesKey, err)
	}
	defer k.Close()
	if err := judgeKey(k, t); err != nil {
		return err
	}
	if err := k.SetStringValue(strings.ToLower(abs), alt); err != nil {
		return fmt.Errorf(`HKLM\%s: write %q: %w`, alternatesKey, strings.ToLower(abs), err)
	}
	return nil
}

// forgetAlternate removes the remembered alternate folder of the state
// folder abs (none remembered: nil).
func forgetAlternate(abs string) error {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, alternatesKey, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(`open HKLM\%s: %w`, alternatesKey, err)
	}
	defer k.Close()
	if err := k.DeleteValue(strings.ToLower(abs)); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf(`HKLM\%s: remove %q: %w`, alternatesKey, strings.ToLower(abs), err)
	}
	return nil
}

// judgeKey says why the open key k is not to be trusted: an owner outside
// t, or an entry that lets someone else set its values, make keys or
// links below it, or change its ACL or owner (judgeSD; the registry's
// KEY_SET_VALUE and KEY_CREATE_SUB_KEY are the file rights' 0x2 and 0x4).
func judgeKey(k registry.Key, t trustSet) error {
	sd, err := windows.GetSecurityInfo(windows.Handle(k), windows.SE_REGISTRY_KEY,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf(`read the ACL of HKLM\%s: %w`, alternatesKey, err)
	}
	parsed, err := parseSDDL(sd.String(), resolveSystemAlias)
	if err != nil {
		return fmt.Errorf(`the ACL of HKLM\%s: %w`, alternatesKey, err)
	}
	if why := judgeSD(parsed, t, kindFile); why != "" {
		return fmt.Errorf(`HKLM\%s %s: not used`, alternatesKey, why)
	}
	if o := offenders(parsed, t, kindFile, keyCreateLink); len(o) > 0 {
		return fmt.Errorf(`HKLM\%s lets %s create links below it: not used`, alternatesKey, describeSID(o[0]))
	}
	return nil
}
