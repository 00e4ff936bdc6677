package network

import "github.com/mdlayher/netlink"

// nl80211 commands and attributes (include/uapi/linux/nl80211.h).
const (
	nl80211CmdGetScan    = 32 // NL80211_CMD_GET_SCAN
	nl80211CmdConnect    = 46 // NL80211_CMD_CONNECT
	nl80211CmdRoam       = 47 // NL80211_CMD_ROAM
	nl80211CmdDisconnect = 48 // NL80211_CMD_DISCONNECT

	nl80211AttrIfindex = 3  // NL80211_ATTR_IFINDEX
	nl80211AttrBSS     = 47 // NL80211_ATTR_BSS

	nl80211BSSInformationElements = 6  // NL80211_BSS_INFORMATION_ELEMENTS
	nl80211BSSStatus              = 9  // NL80211_BSS_STATUS
	nl80211BSSBeaconIEs           = 11 // NL80211_BSS_BEACON_IES

	nl80211BSSStatusAssociated = 1 // NL80211_BSS_STATUS_ASSOCIATED
	nl80211BSSStatusIBSSJoined = 2 // NL80211_BSS_STATUS_IBSS_JOINED
)

// nl80211Ifindex returns NL80211_ATTR_IFINDEX of a message's attributes.
func nl80211Ifindex(b []byte) (int, bool) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return 0, false
	}
	for ad.Next() {
		if ad.Type() == nl80211AttrIfindex {
			v := ad.Uint32()
			return int(v), ad.Err() == nil
		}
	}
	return 0, false
}

// associatedSSID finds, in one NL80211_CMD_NEW_SCAN_RESULTS message, a
// BSS with status associated or IBSS joined and returns its SSID
// information element (element ID 0) from NL80211_BSS_INFORMATION_ELEMENTS,
// else NL80211_BSS_BEACON_IES.
func associatedSSID(b []byte) (string, bool) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", false
	}
	for ad.Next() {
		if ad.Type() != nl80211AttrBSS {
			continue
		}
		bss, err := netlink.NewAttributeDecoder(ad.Bytes())
		if err != nil {
			return "", false
		}
		var (
			status       = -1
			ies, beacons []byte
		)
		for bss.Next() {
			switch bss.Type() {
			case nl80211BSSStatus:
				status = int(bss.Uint32())
			case nl80211BSSInformationElements:
				ies = bss.Bytes()
			case nl80211BSSBeaconIEs:
				beacons = bss.Bytes()
			}
		}
		if bss.Err() != nil || (status != nl80211BSSStatusAssociated && status != nl80211BSSStatusIBSSJoined) {
			return "", false
		}
		if s, ok := ssidElement(ies); ok {
			return s, true
		}
		s, ok := ssidElement(beacons)
		return s, ok
	}
	return "", false
}

// ssidElement returns the SSID element (ID 0) of a list of 802.11
// information elements (ID, length, data).
func ssidElement(b []byte) (string, bool) {
	for len(b) >= 2 {
		id, l := b[0], int(b[1])
		if len(b) < 2+l {
			return "", false
		}
		if id == 0 {
			return string(b[2 : 2+l]), true
		}
		b = b[2+l:]
	}
	return "", false
}
