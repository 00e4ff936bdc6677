package agent

import (
	"net/netip"
	"strings"

	"github.com/mamori-agent/mamori/agent/localapi"
	"github.com/mamori-agent/mamori/config"
	"github.com/mamori-agent/mamori/wire"
)

// The texts of a warning to the person at the PC (localapi.Warning): the
// rule broken, the device or network in words, what happened and what
// to do, in the configured language first and the other one below. The
// strings they are made of come escaped from the collectors and the
// policy (internal/safe); they are plain text, not markup.

// warningOf builds the warning about violation event ev (ID, Held and
// HeldSince are the caller's). lang is agent.language.
func warningOf(ev *Event, lang string) *localapi.Warning {
	v := ev.Violation
	w := &localapi.Warning{Time: ev.Time, Kind: v.Kind, Severity: v.Severity, Article: v.Article,
		Device: v.Device, Key: warningKey(v)}
	subjJA, subjEN := subjectWords(ev)
	w.Texts = orderTexts(lang,
		textOf(v, "ja", subjJA, v.MessageJA, v.RemedyJA),
		textOf(v, "en", subjEN, v.MessageEN, v.RemedyEN))
	return w
}

// warningKey is what the rate limit counts by: the kind and the device
// (a USB port, an interface, a MAC), so that a flapping port or a Wi-Fi
// roaming from address to address is one key.
func warningKey(v *wire.Violation) string { return v.Kind + "|" + v.Device }

// orderTexts puts the configured language first.
func orderTexts(lang string, ja, en localapi.Text) []localapi.Text {
	if lang == config.LanguageEN {
		return []localapi.Text{en, ja}
	}
	return []localapi.Text{ja, en}
}

func textOf(v *wire.Violation, lang, subject, message, remedy string) localapi.Text {
	k, _ := wire.KindOf(v.Kind)
	t := localapi.Text{Lang: lang, Subject: subject, Message: message, Remedy: remedy, Rule: ruleWords(v.Article, lang)}
	t.Title = k.TitleEN
	if lang == "ja" {
		t.Title = k.TitleJA
	}
	if t.Title == "" {
		t.Title = v.Kind
	}
	return t
}

// ruleWords says the article(s) of the security annex broken: "6, 7" is
// "第6条・第7条" and "articles 6 and 7"; "6-3" is "第6条第3項" and
// "article 6-3".
func ruleWords(article, lang string) string {
	var parts []string
	for p := range strings.SplitSeq(article, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	if lang == "ja" {
		for i, p := range parts {
			if a, b, ok := strings.Cut(p, "-"); ok {
				parts[i] = "第" + a + "条第" + b + "項"
			} else {
				parts[i] = "第" + p + "条"
			}
		}
		return strings.Join(parts, "・")
	}
	if len(parts) == 1 {
		return "article " + parts[0]
	}
	return "articles " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// subjectWords names what a violation is about, in Japanese and English:
// "SanDisk Ultra Fit（シリアル 4C530001、ポート 1-2）" and "SanDisk Ultra
// Fit, serial 4C530001, port 1-2"; "Wi-Fi「cafe-free」（wlan0）" and
// "Wi-Fi 'cafe-free' on wlan0".
func subjectWords(ev *Event) (ja, en string) {
	v := ev.Violation
	switch v.Kind {
	case wire.KindUSBStorageUnapproved, wire.KindUSBDeviceUnapproved, wire.KindUSBApprovalExpired,
		wire.KindUSBApprovalNotYet, wire.KindMediaUnencrypted:
		return usbWords(ev)
	case wire.KindNetworkUnapproved:
		return networkWords(ev)
	case wire.KindNetworkUSBAdapter:
		name := v.Device
		if ev.Link != nil {
			name = ev.Link.Name
		}
		port := ev.Path
		if port == "" && ev.Link != nil {
			port = ev.Link.USB
		}
		if port != "" {
			return "USB ネットワークアダプター " + name + "（ポート " + port + "）", "USB network adapter " + name + " at port " + port
		}
		return "USB ネットワークアダプター " + name, "USB network adapter " + name
	case wire.KindNetworkMultiHomed, wire.KindNetworkZoneBridge:
		ifs := v.Interfaces
		if len(ifs) == 0 {
			ifs = []string{v.Device}
		}
		ja = "インターフェース " + strings.Join(ifs, "、")
		en = "interfaces " + strings.Join(ifs, ", ")
		if len(ifs) == 1 {
			en = "interface " + ifs[0]
		}
		if len(v.Networks) > 0 {
			ja += "（" + strings.Join(v.Networks, "、") + "）"
			en += " (" + strings.Join(v.Networks, ", ") + ")"
		}
		return ja, en
	case wire.KindLANDeviceUnregistered:
		ja, en = "LAN 機器 "+v.Device, "LAN device "+v.Device
		var jaIn, enIn []string
		if v.IP != "" {
			jaIn, enIn = append(jaIn, v.IP), append(enIn, v.IP)
		}
		if v.Interface != "" {
			jaIn, enIn = append(jaIn, v.Interface), append(enIn, "on "+v.Interface)
		}
		if len(jaIn) > 0 {
			ja += "（" + strings.Join(jaIn, "、") + "）"
			en += " (" + strings.Join(enIn, " ") + ")"
		}
		return ja, en
	}
	return v.Device, v.Device
}

// usbWords names a USB device: its maker and product, serial and port.
func usbWords(ev *Event) (ja, en string) {
	var name, serial string
	if d := ev.Device; d != nil {
		maker, product := d.Manufacturer, d.Product
		if product == "" {
			product = d.ProductName
		}
		if maker == "" {
			maker = d.VendorName
		}
		name = strings.TrimSpace(maker + " " + product)
		switch {
		case name == "":
			name = "USB " + d.VendorID + ":" + d.ProductID
		case product == "":
			// A maker alone says little: the ids say which device.
			name += " (" + d.VendorID + ":" + d.ProductID + ")"
		}
		if d.Serial != nil {
			serial = *d.Serial
		}
	} else {
		name = "USB " + ev.VendorID + ":" + ev.ProductID
		if ev.Serial != nil {
			serial = *ev.Serial
		}
	}
	var jaIn, enIn []string
	if serial != "" {
		jaIn, enIn = append(jaIn, "シリアル "+serial), append(enIn, "serial "+serial)
	}
	port := ev.Path
	if port == "" {
		port = ev.Violation.Device
	}
	jaIn, enIn = append(jaIn, "ポート "+port), append(enIn, "port "+port)
	if m := ev.Medium; m != nil && m.Disk != "" {
		jaIn, enIn = append(jaIn, "媒体 "+m.Disk), append(enIn, "medium "+m.Disk)
	}
	return name + "（" + strings.Join(jaIn, "、") + "）", name + ", " + strings.Join(enIn, ", ")
}

// networkWords names the network of network_unapproved: the Wi-Fi by its
// SSID, otherwise the kind of link with the address found.
func networkWords(ev *Event) (ja, en string) {
	v := ev.Violation
	name := v.Device
	var ssid, kind string
	var addrs []string
	if l := ev.Link; l != nil {
		name, ssid, kind = l.Name, l.SSID, l.Kind
		addrs = l.Addresses
	}
	// The finding's key names the address, the route or the gateway:
	// "network_unapproved|if=3|10.1.2.3/24|ssid=cafe".
	what := ""
	parts := strings.Split(ev.Subject, "|")
	for _, p := range parts[min(2, len(parts)):] {
		switch {
		case strings.HasPrefix(p, "ssid="):
			if ssid == "" {
				ssid = strings.TrimPrefix(p, "ssid=")
			}
		case strings.HasPrefix(p, "gw="):
			what = "gw"
		case p == "route":
			what = "route"
		default:
			if _, err := netip.ParsePrefix(p); err == nil {
				addrs = []string{p}
			}
		}
	}
	if len(addrs) > 2 {
		addrs = addrs[:2]
	}
	if ssid != "" {
		ja, en = "Wi-Fi「"+ssid+"」（"+name+"）", "Wi-Fi '"+ssid+"' on "+name
	} else {
		switch kind {
		case wire.LinkWireless:
			ja, en = "無線ネットワーク（"+name+"）", "wireless network on "+name
		case wire.LinkUSB:
			ja, en = "USB ネットワークアダプター "+name+" のネットワーク", "network on USB adapter "+name
		case wire.LinkTunnel:
			ja, en = "トンネル "+name+" のネットワーク", "network on tunnel "+name
		case wire.LinkEthernet:
			ja, en = "有線ネットワーク（"+name+"）", "wired network on "+name
		default:
			ja, en = "ネットワーク（"+name+"）", "network on "+name
		}
	}
	switch {
	case what == "gw":
		ja += "、正規でないゲートウェイ"
		en += ", through a look-alike gateway"
	case what == "route":
		ja += "、許可されていないルート"
		en += ", an unapproved route"
	case len(addrs) > 0:
		ja += "、アドレス " + strings.Join(addrs, "、")
		en += ", address " + strings.Join(addrs, ", ")
	}
	return ja, en
}
