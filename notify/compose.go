package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

// Urgency levels of the specification's "urgency" hint.
const (
	UrgencyLow      byte = 0
	UrgencyNormal   byte = 1
	UrgencyCritical byte = 2
)

// AppName is the application name every notification carries.
const AppName = "mamori"

// DesktopEntry is the "desktop-entry" hint: the packages' autostart file
// of the notifier is mamori-notify.desktop.
const DesktopEntry = "mamori-notify"

// Notification is one call of org.freedesktop.Notifications.Notify.
type Notification struct {
	AppName string
	// ReplacesID is the notification this one replaces, 0 for none.
	ReplacesID uint32
	// Icon is a freedesktop icon name.
	Icon    string
	Summary string
	// Body is plain text, or markup when the service takes body markup
	// (Compose escapes it then).
	Body    string
	Urgency byte
	// Category is the "category" hint ("device.added", "network").
	Category string
	// Timeout is expire_timeout in milliseconds: 0 never, -1 the
	// service's default.
	Timeout int32
}

// Compose makes the notification of w: urgency critical (every warning
// is about a violation), summary the rule broken in the first language
// ("許可されていない USB 記憶媒体（第6条・第7条）"), body the device or
// network in words and what to do (the remedy names the contact), in the
// first language and then, below, in the other one with its own title.
// markup says the service takes body markup: &, < and > are escaped then
// (device strings, SSIDs and the contact are not the notifier's to
// format). Summary and body are CleanText'd: control characters and
// bidirectional overrides replaced, each at most MaxText bytes (the body
// before escaping). loc is the time zone for HeldSince (nil: local).
func Compose(w *localapi.Warning, markup bool, loc *time.Location) Notification {
	if loc == nil {
		loc = time.Local
	}
	n := Notification{AppName: AppName, Icon: "dialog-warning", Urgency: UrgencyCritical, Timeout: 0,
		Category: category(w.Kind)}
	esc := func(s string) string { return s }
	if markup {
		esc = escapeMarkup
	}
	if len(w.Texts) == 0 {
		n.Summary = CleanText(w.Kind, MaxText)
		n.Body = esc(CleanText(w.Device, MaxText))
		return n
	}
	first := w.Texts[0]
	n.Summary = CleanText(titleLine(first), MaxText)
	var b strings.Builder
	for i, t := range w.Texts {
		if i > 0 {
			b.WriteString("\n\n")
			b.WriteString(titleLine(t))
			b.WriteString("\n")
		}
		b.WriteString(t.Subject)
		if t.Remedy != "" {
			b.WriteString("\n")
			b.WriteString(t.Remedy)
		}
		if w.Held > 0 {
			b.WriteString("\n")
			b.WriteString(heldLine(t.Lang, w.Held, w.HeldSince, loc))
		}
		if b.Len() > 2*MaxText {
			// CleanText cuts it anyway.
			break
		}
	}
	n.Body = esc(CleanText(b.String(), MaxText))
	return n
}

// titleLine is a text's title with its rule: "許可されていない USB 記憶媒体
// （第6条・第7条）", "Unapproved USB storage (articles 6 and 7)".
func titleLine(t localapi.Text) string {
	if t.Rule == "" {
		return t.Title
	}
	if t.Lang == "ja" {
		return t.Title + "（" + t.Rule + "）"
	}
	return t.Title + " (" + t.Rule + ")"
}

// heldLine says how many warnings like it the rate limit held back.
func heldLine(lang string, n int, since *time.Time, loc *time.Location) string {
	at := ""
	if since != nil {
		at = since.In(loc).Format("15:04")
	}
	if lang == "ja" {
		if at != "" {
			return fmt.Sprintf("%s 以降の同じ警告 %d 件をまとめて表示しています。", at, n)
		}
		return fmt.Sprintf("同じ警告 %d 件をまとめて表示しています。", n)
	}
	if at != "" {
		return fmt.Sprintf("This stands for %d warnings like it since %s.", n, at)
	}
	return fmt.Sprintf("This stands for %d warnings like it.", n)
}

// category is the specification's category hint for a violation kind.
func category(kind string) string {
	switch {
	case strings.HasPrefix(kind, "usb_"), strings.HasPrefix(kind, "media_"):
		return "device.added"
	case strings.HasPrefix(kind, "network_"):
		return "network.connected"
	}
	return "network"
}

// escapeMarkup escapes what the specification's body markup would take
// as markup.
func escapeMarkup(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
