package main

import (
	"bytes"
	"testing"

	"github.com/mamori-agent/mamori/agent/localapi"
)

func TestWriteSources(t *testing.T) {
	var b bytes.Buffer
	writeSources(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no sources printed %q", b.String())
	}
	writeSources(&b, []localapi.SourceStatus{
		{Name: "device notifications", State: localapi.SourceRescans, Detail: "CM_Register_Notification missing\x1b[2J"},
		{Name: "drive letters", State: localapi.SourcePolling, Detail: "drive letters polled every 1s"},
		{Name: "IP change notifications (NotifyIpInterfaceChange)", State: localapi.SourceEvents},
		{Name: "removable volumes", State: localapi.SourceOff, Detail: "not read here"},
	})
	want := "Event sources / イベント源: device notifications rescans, drive letters polling, IP change notifications (NotifyIpInterfaceChange) events, removable volumes off\n" +
		"  device notifications: seen at rescans only (CM_Register_Notification missing\\x1b[2J)\n" +
		"  drive letters: polling (drive letters polled every 1s)\n" +
		"  removable volumes: off (not read here)\n"
	if b.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", b.String(), want)
	}
}
