package fsguard

import (
	"fmt"
	"io/fs"
)

// fileAttributeReparsePoint is Windows' FILE_ATTRIBUTE_REPARSE_POINT: a
// junction (mklink /J, which any user may make), a symbolic link, or
// another reparse point.
const fileAttributeReparsePoint = 0x400

// isLinkElement reports whether a path element, as Lstat (mode) and
// GetFileAttributes (attrs) describe it without following it, is a link:
// a symbolic link, a junction or another reparse point. Such an element
// is refused on the way to what the agent trusts: the owner and ACL read
// through it are those of its target, not its own, and whoever made it
// can re-point it. Pure, so that it is tested on every OS.
func isLinkElement(mode fs.FileMode, attrs uint32) bool {
	return mode&(fs.ModeSymlink|fs.ModeIrregular) != 0 || attrs&fileAttributeReparsePoint != 0
}

// linkError is the refusal of the link element p on the way to checked.
func linkError(p, checked string) *UnsafeError {
	return &UnsafeError{Path: p, Checked: checked,
		Problem: "is a junction or symbolic link: refused; remove it",
		Fix:     fmt.Sprintf(`remove it: rmdir "%s" (a junction or directory link) or del "%s" (a file link), and let mamori create the folder`, p, p)}
}
