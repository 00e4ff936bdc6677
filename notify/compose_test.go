package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/agent/localapi"
)

func sampleWarning(first string) *localapi.Warning {
	ja := localapi.Text{Lang: "ja", Title: "許可されていない USB 記憶媒体", Rule: "第6条・第7条",
		Subject: "SanDisk Ultra Fit（シリアル 4C530001、ポート 1-2）",
		Message: "許可されていない USB 記憶媒体 … が接続されました。",
		Remedy:  "直ちに取り外してください。使用する場合は、事前に甲（情報政策課 内線 1234）の許可を得て、承認リストに登録してもらってください。"}
	en := localapi.Text{Lang: "en", Title: "Unapproved USB storage", Rule: "articles 6 and 7",
		Subject: "SanDisk Ultra Fit, serial 4C530001, port 1-2",
		Message: "Unapproved USB storage … connected at port 1-2.",
		Remedy:  "Unplug it now. Before using it, get the city's prior permission (contact: 情報政策課 内線 1234) and have it added to the approved list."}
	w := &localapi.Warning{ID: "w1", Kind: "usb_storage_unapproved", Severity: "high", Article: "6, 7", Device: "1-2",
		Key: "usb_storage_unapproved|1-2", Texts: []localapi.Text{ja, en}}
	if first == "en" {
		w.Texts = []localapi.Text{en, ja}
	}
	return w
}

func TestCompose(t *testing.T) {
	n := Compose(sampleWarning("ja"), false, time.UTC)
	if n.AppName != "mamori" || n.Urgency != UrgencyCritical || n.Timeout != 0 || n.Category != "device.added" || n.Icon != "dialog-warning" {
		t.Errorf("notification %+v", n)
	}
	if n.Summary != "許可されていない USB 記憶媒体（第6条・第7条）" {
		t.Errorf("summary %q", n.Summary)
	}
	want := "SanDisk Ultra Fit（シリアル 4C530001、ポート 1-2）\n" +
		"直ちに取り外してください。使用する場合は、事前に甲（情報政策課 内線 1234）の許可を得て、承認リストに登録してもらってください。\n\n" +
		"Unapproved USB storage (articles 6 and 7)\n" +
		"SanDisk Ultra Fit, serial 4C530001, port 1-2\n" +
		"Unplug it now. Before using it, get the city's prior permission (contact: 情報政策課 内線 1234) and have it added to the approved list."
	if n.Body != want {
		t.Errorf("body\n%s\nwant\n%s", n.Body, want)
	}
	en := Compose(sampleWarning("en"), false, time.UTC)
	if en.Summary != "Unapproved USB storage (articles 6 and 7)" || !strings.HasPrefix(en.Body, "SanDisk Ultra Fit, serial") ||
		!strings.Contains(en.Body, "\n\n許可されていない USB 記憶媒体（第6条・第7条）\nSanDisk Ultra Fit（シリアル") {
		t.Errorf("English first: %q / %q", en.Summary, en.Body)
	}
}

func TestComposeHeldAndMarkup(t *testing.T) {
	w := sampleWarning("ja")
	since := time.Date(2026, 11, 26, 9, 5, 0, 0, time.UTC)
	w.Held, w.HeldSince = 3, &since
	w.Texts[0].Subject = "<b>Evil & Co</b>"
	n := Compose(w, true, time.UTC)
	if !strings.Contains(n.Body, "&lt;b&gt;Evil &amp; Co&lt;/b&gt;") || strings.Contains(n.Body, "<b>") {
		t.Errorf("markup not escaped: %q", n.Body)
	}
	if !strings.Contains(n.Body, "09:05 以降の同じ警告 3 件をまとめて表示しています。") ||
		!strings.Contains(n.Body, "This stands for 3 warnings like it since 09:05.") {
		t.Errorf("held lines missing: %q", n.Body)
	}
	plain := Compose(w, false, time.UTC)
	if !strings.Contains(plain.Body, "<b>Evil & Co</b>") {
		t.Errorf("plain body changed the text: %q", plain.Body)
	}
	// A warning without texts (a newer agent's?) still says something.
	bare := Compose(&localapi.Warning{Kind: "network_unapproved", Device: "wlan0"}, false, nil)
	if bare.Summary != "network_unapproved" || bare.Body != "wlan0" || bare.Category != "network.connected" {
		t.Errorf("bare %+v", bare)
	}
}
