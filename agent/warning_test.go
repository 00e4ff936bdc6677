package agent

import (
	"testing"
	"time"

	"github.com/mamori-agent/mamori/wire"
)

func TestRuleWords(t *testing.T) {
	for _, tt := range []struct{ in, ja, en string }{
		{"6, 7", "第6条・第7条", "articles 6 and 7"},
		{"11", "第11条", "article 11"},
		{"6-3", "第6条第3項", "article 6-3"},
		{"9, 11, 12", "第9条・第11条・第12条", "articles 9, 11 and 12"},
		{"", "", ""},
		{" , ", "", ""},
	} {
		if ja, en := ruleWords(tt.in, "ja"), ruleWords(tt.in, "en"); ja != tt.ja || en != tt.en {
			t.Errorf("%q: %q %q, want %q %q", tt.in, ja, en, tt.ja, tt.en)
		}
	}
}

// TestWarningOf: the device or network in words, both languages, the
// configured one first, for every source of violations.
func TestWarningOf(t *testing.T) {
	serial := "4C530001"
	mac := "02:00:00:00:00:01"
	stick := &wire.USBDevice{Path: "1-2", VendorID: "0781", ProductID: "5583", Serial: &serial, Manufacturer: "SanDisk", Product: "Ultra Fit"}
	noName := &wire.USBDevice{Path: "3-1", VendorID: "1234", ProductID: "5678"}
	for _, tt := range []struct {
		name   string
		ev     *Event
		ja, en string
	}{
		{"USB storage", &Event{Path: "1-2", Device: stick, Violation: &wire.Violation{Kind: wire.KindUSBStorageUnapproved, Device: "1-2"}},
			"SanDisk Ultra Fit（シリアル 4C530001、ポート 1-2）", "SanDisk Ultra Fit, serial 4C530001, port 1-2"},
		{"USB device without strings", &Event{Path: "3-1", Device: noName, Violation: &wire.Violation{Kind: wire.KindUSBDeviceUnapproved, Device: "3-1"}},
			"USB 1234:5678（ポート 3-1）", "USB 1234:5678, port 3-1"},
		{"usb.ids names", &Event{Path: "3-1", Device: &wire.USBDevice{VendorID: "058f", ProductID: "8468", VendorName: "Alcor Micro Corp."},
			Violation: &wire.Violation{Kind: wire.KindUSBApprovalExpired, Device: "3-1"}},
			"Alcor Micro Corp. (058f:8468)（ポート 3-1）", "Alcor Micro Corp. (058f:8468), port 3-1"},
		{"medium", &Event{Path: "1-2", Device: stick, Medium: &wire.MediumRecord{Disk: "sdc"}, Violation: &wire.Violation{Kind: wire.KindMediaUnencrypted, Device: "1-2"}},
			"SanDisk Ultra Fit（シリアル 4C530001、ポート 1-2、媒体 sdc）", "SanDisk Ultra Fit, serial 4C530001, port 1-2, medium sdc"},
		{"Wi-Fi", &Event{Subject: "network_unapproved|if=3|172.16.0.5/24|ssid=cafe-free", Link: &wire.Link{Name: "wlan0", Kind: wire.LinkWireless, SSID: "cafe-free", MAC: &mac},
			Violation: &wire.Violation{Kind: wire.KindNetworkUnapproved, Device: "wlan0"}},
			"Wi-Fi「cafe-free」（wlan0）、アドレス 172.16.0.5/24", "Wi-Fi 'cafe-free' on wlan0, address 172.16.0.5/24"},
		{"wired", &Event{Subject: "network_unapproved|if=2|192.168.50.2/24", Link: &wire.Link{Name: "eth0", Kind: wire.LinkEthernet, Addresses: []string{"192.168.50.2/24", "fe80::1/64"}},
			Violation: &wire.Violation{Kind: wire.KindNetworkUnapproved, Device: "eth0"}},
			"有線ネットワーク（eth0）、アドレス 192.168.50.2/24", "wired network on eth0, address 192.168.50.2/24"},
		{"look-alike gateway", &Event{Subject: "network_unapproved|if=2|gw=10.20.0.1|00:11:22:33:44:66", Link: &wire.Link{Name: "eth0", Kind: wire.LinkEthernet},
			Violation: &wire.Violation{Kind: wire.KindNetworkUnapproved, Device: "eth0"}},
			"有線ネットワーク（eth0）、正規でないゲートウェイ", "wired network on eth0, through a look-alike gateway"},
		{"route only", &Event{Subject: "network_unapproved|if=4|route", Link: &wire.Link{Name: "tun0", Kind: wire.LinkTunnel},
			Violation: &wire.Violation{Kind: wire.KindNetworkUnapproved, Device: "tun0"}},
			"トンネル tun0 のネットワーク、許可されていないルート", "network on tunnel tun0, an unapproved route"},
		{"no link known", &Event{Subject: "network_unapproved|if=9|10.1.2.3/8", Violation: &wire.Violation{Kind: wire.KindNetworkUnapproved, Device: "if9"}},
			"ネットワーク（if9）、アドレス 10.1.2.3/8", "network on if9, address 10.1.2.3/8"},
		{"tethering", &Event{Path: "1-3", Link: &wire.Link{Name: "usb0", Kind: wire.LinkUSB, USB: "1-3"}, Violation: &wire.Violation{Kind: wire.KindNetworkUSBAdapter, Device: "usb0"}},
			"USB ネットワークアダプター usb0（ポート 1-3）", "USB network adapter usb0 at port 1-3"},
		{"multi-homed", &Event{Violation: &wire.Violation{Kind: wire.KindNetworkMultiHomed, Device: "eth0,wlan0", Interfaces: []string{"eth0", "wlan0"}, Networks: []string{"City LAN"}}},
			"インターフェース eth0、wlan0（City LAN）", "interfaces eth0, wlan0 (City LAN)"},
		{"zone bridge, one interface", &Event{Violation: &wire.Violation{Kind: wire.KindNetworkZoneBridge, Device: "br0", Interfaces: []string{"br0"}}},
			"インターフェース br0", "interface br0"},
		{"LAN device", &Event{Violation: &wire.Violation{Kind: wire.KindLANDeviceUnregistered, Device: "00:1b:a9:00:00:02", IP: "10.20.5.9", Interface: "eth0"}},
			"LAN 機器 00:1b:a9:00:00:02（10.20.5.9、eth0）", "LAN device 00:1b:a9:00:00:02 (10.20.5.9 on eth0)"},
		{"unknown kind", &Event{Violation: &wire.Violation{Kind: "from_the_future", Device: "x"}}, "x", "x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.Type, tt.ev.Time = TypeViolation, time.Unix(1, 0)
			v := tt.ev.Violation
			v.MessageJA, v.MessageEN, v.RemedyJA, v.RemedyEN = "mja", "men", "rja", "ren"
			w := warningOf(tt.ev, "en")
			if len(w.Texts) != 2 || w.Texts[0].Lang != "en" || w.Texts[1].Lang != "ja" {
				t.Fatalf("texts %+v", w.Texts)
			}
			if w.Texts[1].Subject != tt.ja || w.Texts[0].Subject != tt.en {
				t.Errorf("subject\n%q\n%q\nwant\n%q\n%q", w.Texts[1].Subject, w.Texts[0].Subject, tt.ja, tt.en)
			}
			if w.Texts[0].Message != "men" || w.Texts[0].Remedy != "ren" || w.Texts[1].Message != "mja" || w.Texts[1].Remedy != "rja" {
				t.Errorf("messages %+v", w.Texts)
			}
			if w.Key != v.Kind+"|"+v.Device || !w.Time.Equal(time.Unix(1, 0)) {
				t.Errorf("key %q time %v", w.Key, w.Time)
			}
			if ja := warningOf(tt.ev, "ja"); ja.Texts[0].Lang != "ja" {
				t.Errorf("ja first: %+v", ja.Texts)
			}
		})
	}
	w := warningOf(&Event{Violation: &wire.Violation{Kind: wire.KindUSBStorageUnapproved, Device: "1-2", Article: "6, 7"}, Device: stick}, "ja")
	if w.Texts[0].Title != "許可されていない USB 記憶媒体" || w.Texts[0].Rule != "第6条・第7条" || w.Texts[1].Title != "Unapproved USB storage" || w.Texts[1].Rule != "articles 6 and 7" {
		t.Errorf("titles %+v", w.Texts)
	}
}
