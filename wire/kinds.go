package wire

import (
	"sort"
	"strings"
)

// Violation kinds: the contract with the hub and the kind label of
// mamori_violations_total.
const (
	KindUSBStorageUnapproved  = "usb_storage_unapproved"
	KindUSBDeviceUnapproved   = "usb_device_unapproved"
	KindUSBApprovalExpired    = "usb_approval_expired"
	KindUSBApprovalNotYet     = "usb_approval_not_yet_valid"
	KindMediaUnencrypted      = "media_unencrypted"
	KindNetworkUnapproved     = "network_unapproved"
	KindNetworkUSBAdapter     = "network_usb_adapter"
	KindNetworkMultiHomed     = "network_multi_homed"
	KindNetworkZoneBridge     = "network_zone_bridge"
	KindLANDeviceUnregistered = "lan_device_unregistered"
)

// Severities, from the worst.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityMedium   = "medium"
)

// KindInfo is one row of the kinds table: what a violation of this kind
// means, which article of the security annex it breaks, and the texts the
// person at the PC reads.
//
// Texts are templates: {name} is replaced by the value of that name (see
// Expand); the names each kind fills are listed in Fields. Every remedy
// names {contact}, the config's agent.contact.
type KindInfo struct {
	Kind     string
	Source   string // SourceUSB, SourceMedia, SourceNetwork, SourceLAN
	Severity string
	// Article is the annex's article number(s), "6, 7".
	Article string
	// TitleJA and TitleEN are the short names (the README table, the hub).
	TitleJA, TitleEN string
	// When says in English when the kind is raised (the README table).
	When string
	// MessageJA and MessageEN say what happened; RemedyJA and RemedyEN
	// what to do.
	MessageJA, MessageEN string
	RemedyJA, RemedyEN   string
	// Fields are the template names the messages use.
	Fields []string
}

// Kinds is the one table of violation kinds. Metrics labels, the texts of
// every violation, the hub's list and the README table are built from it.
var Kinds = []KindInfo{
	{
		Kind: KindUSBStorageUnapproved, When: "storage (a mass-storage interface, or block devices beneath it) that no entry of `approved.usb` matches", Source: SourceUSB, Severity: SeverityHigh, Article: "6, 7",
		TitleJA: "許可されていない USB 記憶媒体", TitleEN: "Unapproved USB storage",
		MessageJA: "許可されていない USB 記憶媒体 {device} がポート {port} に接続されました。電磁的記録媒体の持ち込み・持ち出しには甲の事前の許可が必要です（第6条・第7条）。",
		MessageEN: "Unapproved USB storage {device} connected at port {port}. Bringing media in or out needs the city's prior permission (articles 6 and 7).",
		RemedyJA:  "直ちに取り外してください。使用する場合は、事前に甲（{contact}）の許可を得て、承認リストに登録してもらってください。",
		RemedyEN:  "Unplug it now. Before using it, get the city's prior permission (contact: {contact}) and have it added to the approved list.",
		Fields:    []string{"device", "port", "contact"},
	},
	{
		Kind: KindUSBDeviceUnapproved, When: "any other USB device no entry matches", Source: SourceUSB, Severity: SeverityMedium, Article: "11",
		TitleJA: "許可されていない USB 機器", TitleEN: "Unapproved USB device",
		MessageJA: "許可されていない USB 機器 {device} がポート {port} に接続されました。周辺機器の持ち込みには甲の事前の許可が必要です（第11条）。",
		MessageEN: "Unapproved USB device {device} connected at port {port}. Bringing in peripherals needs the city's prior permission (article 11).",
		RemedyJA:  "直ちに取り外してください。使用する場合は、事前に甲（{contact}）の許可を得て、承認リストに登録してもらってください。",
		RemedyEN:  "Unplug it now. Before using it, get the city's prior permission (contact: {contact}) and have it added to the approved list.",
		Fields:    []string{"device", "port", "contact"},
	},
	{
		Kind: KindUSBApprovalExpired, When: "the matching entry's `valid_until` has passed (high, articles 6 and 7, for storage)", Source: SourceUSB, Severity: SeverityMedium, Article: "11",
		TitleJA: "USB 機器の承認の期限切れ", TitleEN: "USB approval expired",
		MessageJA: "USB 機器 {device}（ポート {port}）の承認「{entry}」は {date} に期限が切れています。期限切れの承認では使用できません（第7条・第11条）。",
		MessageEN: "The approval \"{entry}\" for USB device {device} at port {port} ended on {date}. An expired approval is no permission (articles 7 and 11).",
		RemedyJA:  "直ちに取り外し、再度使用する前に甲（{contact}）に承認の更新を依頼してください。",
		RemedyEN:  "Unplug it now and ask the city ({contact}) to renew the approval before using it again.",
		Fields:    []string{"device", "port", "entry", "date", "contact"},
	},
	{
		Kind: KindUSBApprovalNotYet, When: "before the matching entry's `valid_from` (high, articles 6 and 7, for storage)", Source: SourceUSB, Severity: SeverityMedium, Article: "11",
		TitleJA: "USB 機器の承認の期間前", TitleEN: "USB approval not yet valid",
		MessageJA: "USB 機器 {device}（ポート {port}）の承認「{entry}」は {date} からです。それまでは使用できません（第7条・第11条）。",
		MessageEN: "The approval \"{entry}\" for USB device {device} at port {port} starts on {date}, not before (articles 7 and 11).",
		RemedyJA:  "直ちに取り外してください。承認の有効期間はまだ始まっていません。承認された開始日から使用してください（問い合わせ先: {contact}）。",
		RemedyEN:  "Unplug it: the approval is not in force yet. Use it only from the approved start date (contact: {contact}).",
		Fields:    []string{"device", "port", "entry", "date", "contact"},
	},
	{
		Kind: KindMediaUnencrypted, When: "`require_encryption` and a medium is not shown to be encrypted", Source: SourceMedia, Severity: SeverityHigh, Article: "6-3",
		TitleJA: "暗号化されていない媒体", TitleEN: "Medium not encrypted",
		MessageJA: "USB 記憶媒体 {device}（ポート {port}）は暗号化を条件に承認されていますが（「{entry}」）、媒体 {disk} が暗号化されていることを確認できません: {seen}（第6条第3項）。",
		MessageEN: "USB storage {device} at port {port} is approved only encrypted (\"{entry}\"), but its medium {disk} is not shown to be encrypted: {seen} (article 6-3).",
		RemedyJA:  "直ちに取り外し、承認の条件どおり暗号化された媒体（LUKS または BitLocker To Go）のみを使用してください（問い合わせ先: {contact}）。",
		RemedyEN:  "Unplug it and copy information assets only to an encrypted medium (LUKS or BitLocker To Go), as the approval requires (contact: {contact}).",
		Fields:    []string{"device", "port", "entry", "disk", "seen", "contact"},
	},
	{
		Kind: KindNetworkUnapproved, When: "an interface holds an address in no approved network (or carries a default route without one), or a default route's gateway answers with another MAC than the pinned `gateway_mac` (a look-alike gateway)", Source: SourceNetwork, Severity: SeverityHigh, Article: "9",
		TitleJA: "許可されていないネットワークへの接続", TitleEN: "Unapproved network",
		MessageJA: "インターフェース {interface} が許可されていないネットワークに接続されています: {detail}。ネットワークへの接続には甲の事前の許可が必要です（第9条）。",
		MessageEN: "Interface {interface} is on a network that is not approved: {detail}. Connecting to a network needs the city's prior permission (article 9).",
		RemedyJA:  "直ちに {interface} の接続を切ってください。ネットワークに接続する前に甲（{contact}）の許可を得てください。",
		RemedyEN:  "Disconnect {interface} now. Get the city's permission (contact: {contact}) before connecting this PC to a network.",
		Fields:    []string{"interface", "detail", "contact"},
	},
	{
		Kind: KindNetworkUSBAdapter, When: "a USB network adapter (tethering over RNDIS/CDC-ECM/NCM, a USB Ethernet dongle) is up or holds an address, unless that USB device is approved", Source: SourceNetwork, Severity: SeverityHigh, Article: "9, 11",
		TitleJA: "USB ネットワークアダプター（テザリング等）", TitleEN: "USB network adapter (tethering)",
		MessageJA: "USB ネットワークアダプター {device}（ポート {port}）がインターフェース {interface} として接続されました。スマートフォンのテザリングや USB LAN アダプターは許可なくネットワークに接続します（第9条・第11条）。",
		MessageEN: "USB network adapter {device} at port {port} came up as interface {interface}. Phone tethering or a USB network adapter connects the PC to a network without permission (articles 9 and 11).",
		RemedyJA:  "直ちに取り外してください。使用する場合は、事前に甲（{contact}）の許可を得て、その USB 機器を承認リストに登録してもらってください。",
		RemedyEN:  "Unplug it now. To use it, get the city's prior permission (contact: {contact}) and have the USB device added to the approved list.",
		Fields:    []string{"device", "port", "interface", "contact"},
	},
	{
		Kind: KindNetworkMultiHomed, When: "on an approved network and, through another interface that is up, on one that is not (whether or not a route uses it); or a bridge joining them", Source: SourceNetwork, Severity: SeverityHigh, Article: "9",
		TitleJA: "許可されたネットワークと他のネットワークへの同時接続", TitleEN: "Multi-homed: approved and unapproved network at once",
		MessageJA: "この PC は許可されたネットワーク {network} に接続したまま、{others} を通じて許可されていないネットワークにも接続しています。庁内ネットワークの外への橋渡しになります（第9条）。",
		MessageEN: "This PC is connected to {network} (approved) and at the same time on a network that is not approved through {others}: a bridge out of the city network (article 9).",
		RemedyJA:  "直ちに {others} の接続を切ってください。甲（{contact}）に報告してください。",
		RemedyEN:  "Disconnect {others} now and tell the city ({contact}).",
		Fields:    []string{"network", "others", "interfaces", "contact"},
	},
	{
		Kind: KindNetworkZoneBridge, When: "on two approved networks of different `zone`s at once (LGWAN and internet)", Source: SourceNetwork, Severity: SeverityCritical, Article: "9",
		TitleJA: "分離すべきネットワーク系統の同時接続", TitleEN: "Zone bridge: two network zones at once",
		MessageJA: "この PC は {networks} に同時に接続しています。系統 {zones} は決して接続してはなりません（第9条、三層の対策）。",
		MessageEN: "This PC is on {networks} at once. The zones {zones} must never be connected (article 9, the three-layer model).",
		RemedyJA:  "直ちにどちらか一方の接続を切り、すぐに甲（{contact}）に報告してください。",
		RemedyEN:  "Disconnect one of them now and report it to the city ({contact}) at once.",
		Fields:    []string{"networks", "zones", "interfaces", "contact"},
	},
	{
		Kind: KindLANDeviceUnregistered, When: "a neighbour (ARP/NDP) on an approved network whose MAC is not in `approved.lan_devices` nor a pinned gateway; once per MAC per `lan_report_window`", Source: SourceLAN, Severity: SeverityMedium, Article: "9",
		TitleJA: "登録されていない LAN 機器", TitleEN: "Unregistered LAN device",
		MessageJA: "登録されていない機器 {mac}（{ip}）がネットワーク {network} のインターフェース {interface} 上にいます{local_ja}（第9条）。",
		MessageEN: "An unregistered device {mac} ({ip}) is on network {network} at interface {interface}{local_en} (article 9).",
		RemedyJA:  "ご自分の機器であれば直ちにネットワークから外してください。心当たりがなければ甲（{contact}）に知らせてください。",
		RemedyEN:  "If it is yours, disconnect it from the network now; if not, tell the city ({contact}).",
		Fields:    []string{"mac", "ip", "network", "interface", "local_ja", "local_en", "contact"},
	},
}

var kindIndex = func() map[string]*KindInfo {
	m := make(map[string]*KindInfo, len(Kinds))
	for i := range Kinds {
		m[Kinds[i].Kind] = &Kinds[i]
	}
	return m
}()

// KindOf returns the row of kind, and false for an unknown kind.
func KindOf(kind string) (KindInfo, bool) {
	k, ok := kindIndex[kind]
	if !ok {
		return KindInfo{}, false
	}
	return *k, true
}

// KindNames returns every kind, in the table's order.
func KindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.Kind
	}
	return out
}

// Expand replaces each {name} in template by values[name]. A name without
// a value is left as it is, so a missing value shows instead of vanishing.
// Values are inserted as they are: callers pass strings already escaped
// for people (internal/safe).
func Expand(template string, values map[string]string) string {
	if !strings.Contains(template, "{") {
		return template
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		pairs = append(pairs, "{"+k+"}", values[k])
	}
	return strings.NewReplacer(pairs...).Replace(template)
}
