package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mamori-agent/mamori/agent"
	"github.com/mamori-agent/mamori/internal/safe"
)

// cell makes a string safe for a terminal table: control characters (the
// tab and newline that would break the columns and rows too), escape
// sequences, bidirectional overrides and invalid UTF-8 are shown escaped as
// safe.String does. Backslashes are left as they are: device strings come
// already escaped from the collectors and must not be escaped twice, so a
// cell is for reading, not an identity (the JSON output is exact). Mount
// points are kept raw in the JSON and the audit log (they are real paths);
// every human-facing output escapes them here.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(safe.String(s), `\\`, `\`)
}

func writeTable(w io.Writer, rep *agent.Report, lang string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tID\tSERIAL\tCLASSES\tSTORAGE\tAPPROVED\tENTRY\tDEVICE")
	for _, d := range rep.Devices {
		serial := "-"
		if d.Serial != nil {
			serial = cell(*d.Serial)
		}
		entry := "-"
		if d.Entry != nil {
			entry = cell(*d.Entry)
		}
		fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%v\t%v\t%s\t%s\n", cell(d.Path), cell(d.VendorID), cell(d.ProductID), serial,
			cell(strings.Join(d.Classes, ",")), d.Storage, d.Approved, entry, cell(d.Name))
	}
	tw.Flush()
	if !rep.USBBus {
		fmt.Fprintln(w, "This system has no USB bus (no bus/usb in sysfs): there is nothing to see. このシステムには USB バスがありません。")
	}
	if len(rep.Volumes) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VOLUME\tMOUNT POINT\tFS\tLABEL\tSIZE\tRO\tENCRYPTED\tUSB")
		for _, v := range rep.Volumes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%v\t%s\n", cell(v.Device), cell(v.MountPoint), cell(v.FSType), cell(v.Label),
				v.Size, v.ReadOnly, v.Encrypted, cell(v.USBDevice))
		}
		tw.Flush()
	}
	if n := rep.Network; n != nil {
		writeNetworkTable(w, n)
	}
	fmt.Fprintln(w)
	if len(rep.Errors) > 0 {
		fmt.Fprintf(w, "INCOMPLETE: %d part(s) could not be read; what is not seen is not cleared. 一部を読み取れませんでした:\n", len(rep.Errors))
		for _, e := range rep.Errors {
			fmt.Fprintf(w, "- %s\n", cell(e))
		}
		fmt.Fprintln(w)
	}
	if len(rep.Violations) == 0 {
		if len(rep.Errors) == 0 {
			fmt.Fprintln(w, "No violations. 違反はありません。")
		} else {
			fmt.Fprintln(w, "No violations among what could be read. 読み取れた範囲に違反はありません。")
		}
		return
	}
	fmt.Fprintf(w, "%d violation(s) / 違反 %d 件:\n", len(rep.Violations), len(rep.Violations))
	for _, v := range rep.Violations {
		msg, remedy := v.MessageJA, v.RemedyJA
		if lang == "en" {
			msg, remedy = v.MessageEN, v.RemedyEN
		}
		fmt.Fprintf(w, "- [%s] %s (article %s, device %s)\n    %s\n    → %s\n", v.Severity, v.Kind, v.Article, cell(v.Device), cell(msg), cell(remedy))
	}
}

// writeNetworkTable shows the links, gateways and LAN devices.
func writeNetworkTable(w io.Writer, n *agent.NetworkReport) {
	fmt.Fprintln(w)
	if len(n.Interfaces) == 0 {
		fmt.Fprintln(w, "No network interfaces but loopback. ループバック以外のネットワークインターフェースはありません。")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INTERFACE\tINDEX\tKIND\tMAC\tSTATE\tUSB\tSSID\tADDRESSES\tAPPROVED\tNETWORK")
	for _, l := range n.Interfaces {
		mac := "-"
		if l.MAC != nil {
			mac = *l.MAC
		}
		state := "down"
		if l.AdminUp {
			state = "up/" + l.OperState
			if l.Carrier {
				state += ",carrier"
			}
		}
		approved := "-"
		switch {
		case l.Ignored:
			approved = "ignored"
		case l.Approved != nil:
			approved = fmt.Sprint(*l.Approved)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(l.Name), l.Index, l.Kind, mac, state, cell(l.USB), cell(l.SSID),
			cell(strings.Join(l.Addresses, ",")), approved, cell(l.Network))
	}
	tw.Flush()
	if len(n.Gateways) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEFAULT ROUTE\tGATEWAY\tGATEWAY MAC")
		for _, g := range n.Gateways {
			mac := "(not known yet)"
			if g.MAC != nil {
				mac = *g.MAC
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(g.Interface), cell(g.IP), mac)
		}
		tw.Flush()
	}
	if len(n.Neighbors) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LAN DEVICE\tIP\tINTERFACE\tREGISTERED\tENTRY\tLOCALLY ADMINISTERED")
		for _, nb := range n.Neighbors {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%v\n", nb.MAC, cell(nb.IP), cell(nb.Interface), nb.Registered, cell(nb.Name), nb.LocallyAdministered)
		}
		tw.Flush()
	}
}
