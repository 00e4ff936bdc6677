package wire

// USBDevice is a USB device as records show it. Its JSON is the USB-core
// release's, field for field; sources are the sysfs attributes named.
type USBDevice struct {
	// Path is the bus path and sysfs name: "1-4.1.3", or "usb1".
	Path   string `json:"path"`
	BusNum int    `json:"busnum"` // busnum
	DevNum int    `json:"devnum"` // devnum

	VendorID  string `json:"vendor_id"`  // idVendor, 4 lower-case hex digits
	ProductID string `json:"product_id"` // idProduct
	BCDDevice string `json:"bcd_device"` // bcdDevice

	// Serial is nil when the device has none, which differs from "".
	Serial       *string `json:"serial"`
	Manufacturer string  `json:"manufacturer"` // sanitised
	Product      string  `json:"product"`      // sanitised

	// VendorName and ProductName come from the usb.ids database.
	VendorName  string `json:"vendor_name,omitempty"`
	ProductName string `json:"product_name,omitempty"`

	Class    string `json:"class"`    // bDeviceClass, 2 lower-case hex digits
	SubClass string `json:"subclass"` // bDeviceSubClass
	Protocol string `json:"protocol"` // bDeviceProtocol

	Speed      string `json:"speed,omitempty"` // Mbit/s as the kernel writes it
	Authorized *bool  `json:"authorized"`
	Parent     string `json:"parent,omitempty"` // bus path of the hub

	Interfaces   []USBInterface   `json:"interfaces"`
	BlockDevices []USBBlockDevice `json:"block_devices"`
}

// USBInterface is one interface of the active configuration.
type USBInterface struct {
	Number   int    `json:"number"`   // bInterfaceNumber
	Class    string `json:"class"`    // bInterfaceClass
	SubClass string `json:"subclass"` // bInterfaceSubClass
	Protocol string `json:"protocol"` // bInterfaceProtocol
	Driver   string `json:"driver"`   // bound driver, "" when none
}

// USBBlockDevice is a disk or partition below a USB device.
type USBBlockDevice struct {
	Name      string `json:"name"`      // "sda", "sda1"
	Size      int64  `json:"size"`      // bytes
	ReadOnly  bool   `json:"read_only"` // ro
	Removable bool   `json:"removable"` // removable (of the disk)
	Partition bool   `json:"partition"`
}

// Volume is a mounted file system as records show it.
type Volume struct {
	Device     string `json:"device"`      // mount source, "/dev/sda1"
	MountPoint string `json:"mount_point"` // fstab escapes undone
	FSType     string `json:"fs_type"`
	ReadOnly   bool   `json:"read_only"`
	Size       int64  `json:"size"` // bytes, 0 when unknown
	Label      string `json:"label"`
	UUID       string `json:"uuid,omitempty"`
	Encrypted  bool   `json:"encrypted"`
	Encryption string `json:"encryption,omitempty"`
	ClearKey   bool   `json:"clear_key,omitempty"`
	Backing    string `json:"backing,omitempty"`
	Error      string `json:"error,omitempty"`
	USBDevice  string `json:"usb_device"` // bus path, "" when not on USB
}

// Link kinds (Link.Kind).
const (
	LinkEthernet = "ethernet"
	LinkWireless = "wireless"
	// LinkUSB is a network adapter on USB: phone tethering (RNDIS,
	// CDC-ECM, CDC-NCM), a USB Ethernet dongle, a USB Wi-Fi stick.
	LinkUSB      = "usb"
	LinkTunnel   = "tunnel" // tun, WireGuard, GRE, IPIP, SIT, ...
	LinkBridge   = "bridge" // bridge and bond masters
	LinkVirtual  = "virtual"
	LinkLoopback = "loopback"
)

// MaxLinkAddresses is the most addresses a Link in a record lists: a
// record stays small whatever is put on an interface.
const MaxLinkAddresses = 32

// Link is a network interface as records show it.
type Link struct {
	Name  string `json:"name"`  // IFLA_IFNAME
	Index int    `json:"index"` // ifindex
	Kind  string `json:"kind"`  // LinkEthernet, ...
	// MAC is IFLA_ADDRESS, lower-case and colon-separated; nil when the
	// link has none (tunnels, loopback).
	MAC *string `json:"mac"`
	// AdminUp is IFF_UP; OperState is IFLA_OPERSTATE in the kernel's words
	// ("up", "down", "unknown", "dormant", "lowerlayerdown", "notpresent",
	// "testing"); Carrier is IFF_LOWER_UP.
	AdminUp   bool   `json:"admin_up"`
	OperState string `json:"oper_state"`
	Carrier   bool   `json:"carrier"`
	// USB is the bus path of the USB device the link hangs off, "" when
	// none (sysfs parent chain of /sys/class/net/<name>/device).
	USB string `json:"usb,omitempty"`
	// SSID is the Wi-Fi network the link is associated with (nl80211), ""
	// when none or not wireless.
	SSID string `json:"ssid,omitempty"`
	// Master is the bridge or bond the link is enslaved to (IFLA_MASTER).
	Master    string   `json:"master,omitempty"`
	Addresses []string `json:"addresses,omitempty"` // "10.20.3.4/16"
	// AddressesTotal is how many addresses the link holds when Addresses
	// shows only the first MaxLinkAddresses of them (0 otherwise).
	AddressesTotal int `json:"addresses_total,omitempty"`
	// Approved and Network are the verdict: the link is on the approved
	// network named (only links on a network have one).
	Approved *bool  `json:"approved,omitempty"`
	Network  string `json:"network,omitempty"`
	Ignored  bool   `json:"ignored,omitempty"`
}

// Address is one address on a link (RTM_NEWADDR): the local address
// (IFA_LOCAL, else IFA_ADDRESS) with its prefix length.
type Address struct {
	Interface string `json:"interface"`
	Index     int    `json:"index"`
	Prefix    string `json:"prefix"` // "10.20.3.4/16", "fe80::1/64"
	// Peer is the other end of a point-to-point link (IFA_ADDRESS when it
	// differs from IFA_LOCAL), never judged.
	Peer string `json:"peer,omitempty"`
}

// Gateway is the next hop of a default route: the interface it leaves
// through, its address, and its MAC from the neighbour table (nil while
// the kernel has none).
type Gateway struct {
	Interface string  `json:"interface"`
	IP        string  `json:"ip,omitempty"`
	MAC       *string `json:"mac"`
}

// Neighbour is an entry of the kernel's neighbour table (ARP, NDP): a
// device on the local segment.
type Neighbour struct {
	Interface string   `json:"interface"`
	MAC       string   `json:"mac"`           // lower-case, colon-separated
	IP        string   `json:"ip"`            // first IPv4, else global IPv6, else link-local
	IPs       []string `json:"ips,omitempty"` // every address seen with this MAC
	// Registered is the verdict: the MAC is in approved.lan_devices or is
	// a pinned gateway.
	Registered bool `json:"registered"`
	// LocallyAdministered is bit 0x02 of the first octet: a randomised or
	// assigned MAC, not a maker's.
	LocallyAdministered bool   `json:"locally_administered"`
	Name                string `json:"name,omitempty"` // the registered entry
}
