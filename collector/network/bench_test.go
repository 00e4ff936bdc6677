package network

import (
	"encoding/binary"
	"testing"
)

// neighbourDump builds a dump of n neighbour messages from the captured
// entry of 192.0.2.2, each with its own IPv4 address and MAC.
func neighbourDump(b *testing.B, n int) []byte {
	b.Helper()
	var tmpl rawMessage
	for _, m := range splitRaw(b, readCapture(b, "dump_neighs.bin")) {
		if m.typ == rtmNewNeigh && len(m.data) >= 12 && m.data[0] == afInet && binary.NativeEndian.Uint32(m.data[4:8]) == 2 {
			tmpl = m
			break
		}
	}
	if tmpl.data == nil {
		b.Fatal("no AF_INET neighbour on veth0 in the capture")
	}
	whole := readWhole(tmpl)
	attrs := whole[16+12:]
	dst, ll := attrOffset(attrs, 1), attrOffset(attrs, 2) // NDA_DST, NDA_LLADDR
	if dst < 0 || ll < 0 {
		b.Fatal("template without NDA_DST or NDA_LLADDR")
	}
	out := make([]byte, 0, n*len(whole))
	for i := range n {
		start := len(out)
		out = append(out, whole...)
		a := out[start+16+12:]
		binary.BigEndian.PutUint32(a[dst+4:], 0x0a000000|uint32(i)) // 10.0.0.0/8
		binary.BigEndian.PutUint32(a[ll+4+2:], uint32(i))
	}
	return out
}

func attrOffset(b []byte, typ uint16) int {
	for off := 0; off+4 <= len(b); {
		l := int(binary.NativeEndian.Uint16(b[off:]))
		if binary.NativeEndian.Uint16(b[off+2:]) == typ {
			return off
		}
		if l < 4 {
			break
		}
		off += (l + 3) &^ 3
	}
	return -1
}

func BenchmarkParseNeighbours10k(b *testing.B) {
	buf := neighbourDump(b, 10000)
	cs, err := ParseMessages(buf)
	if err != nil || len(cs) != 10000 || cs[9999].Neighbour.IP.String() != "10.0.39.15" {
		b.Fatalf("%d changes, %v", len(cs), err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMessages(buf); err != nil {
			b.Fatal(err)
		}
	}
}
