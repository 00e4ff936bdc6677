package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/mamori-agent/mamori/hub/api"
	"github.com/mamori-agent/mamori/wire"
)

// benchBatch is a batch of n events shaped like an agent's: USB devices
// coming and going with their facts, a violation in ten, a link change.
func benchBatch(n int) []byte {
	ts := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
	var b bytes.Buffer
	b.WriteString(`{"schema":2,"asset_id":"PC-0001","events":[`)
	prev := ""
	for i := range n {
		serial := "SN" + strconv.Itoa(i%97)
		var ev string
		switch i % 10 {
		case 0:
			ev = `{"time":"` + ts + `","type":"violation","source":"usb","trigger":"uevent","asset_id":"PC-0001","path":"1-2.3","vendor_id":"0781","product_id":"5581","serial":"` + serial +
				`","violation":{"kind":"usb_unapproved","severity":"high","article":"4","device":"SanDisk Ultra (0781:5581)","message":"An unapproved USB storage device was connected.","message_ja":"承認されていないUSB記憶装置が接続されました。","message_en":"An unapproved USB storage device was connected."},"kind":"usb_unapproved"}`
		case 9:
			ev = `{"time":"` + ts + `","type":"link_up","source":"network","trigger":"netlink","asset_id":"PC-0001","subject":"link:3","instance":"enp3s0","link":{"name":"enp3s0","index":3,"kind":"ethernet","mac":"52:54:00:12:34:56","admin_up":true,"oper_state":"up","carrier":true}}`
		default:
			ev = `{"time":"` + ts + `","type":"device_added","source":"usb","trigger":"uevent","asset_id":"PC-0001","path":"1-2.3","vendor_id":"0781","product_id":"5581","serial":"` + serial +
				`","device":{"path":"1-2.3","busnum":1,"devnum":7,"vendor_id":"0781","product_id":"5581","bcd_device":"0100","serial":"` + serial + `","manufacturer":"SanDisk","product":"Ultra","class":"00","subclass":"00","protocol":"00","speed":"480","authorized":true,"parent":"1-2"},"decision":{"status":"unapproved"}}`
		}
		h := sha256.Sum256(append([]byte(prev), ev...))
		hash := hex.EncodeToString(h[:])
		be, _ := json.Marshal(wire.BatchEvent{ID: "0123456789abcdef0123456789abcdef-" + strconv.Itoa(i+1), Seq: uint64(i + 1), Hash: hash, PrevHash: prev, Event: json.RawMessage(ev)})
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(be)
		prev = hash
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkDecodeBatch measures DecodeBatch on a batch of 500 events (the
// agent's default): the hub's CPU per event before the store.
func BenchmarkDecodeBatch(b *testing.B) {
	data := benchBatch(500)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := api.DecodeBatch(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/event")
}
