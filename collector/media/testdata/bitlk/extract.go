//go:build ignore

// extract writes the parts of a BitLocker image that Probe reads (the
// first 8 KiB and the three FVE metadata blocks) as a small gzipped chunk
// file. Usage: go run extract.go IMAGE OUT.chunks.gz
//
// Chunk file format (after gunzip): "MAMORI-CHUNKS1\n", u64 LE image size,
// then records of u64 LE offset, u32 LE length, that many bytes.
package main

import (
	"compress/gzip"
	"encoding/binary"
	"io"
	"log"
	"os"
)

func main() {
	in, err := os.Open(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	st, err := in.Stat()
	if err != nil {
		log.Fatal(err)
	}
	head := make([]byte, 8192)
	if _, err := io.ReadFull(in, head); err != nil {
		log.Fatal(err)
	}
	at := 0xA0
	if string(head[3:11]) == "MSWIN4.1" {
		at = 0x1A8
	}
	type chunk struct {
		off  int64
		data []byte
	}
	chunks := []chunk{{0, head}}
	for i := 0; i < 3; i++ {
		off := int64(binary.LittleEndian.Uint64(head[at+16+8*i:]))
		hdr := make([]byte, 112)
		if _, err := in.ReadAt(hdr, off); err != nil {
			log.Fatal(err)
		}
		size := int64(binary.LittleEndian.Uint32(hdr[64:]))
		n := (64 + size + 511) / 512 * 512
		b := make([]byte, n)
		if _, err := in.ReadAt(b, off); err != nil {
			log.Fatal(err)
		}
		chunks = append(chunks, chunk{off, b})
	}
	out, err := os.Create(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(out, gzip.BestCompression)
	zw.Write([]byte("MAMORI-CHUNKS1\n"))
	binary.Write(zw, binary.LittleEndian, st.Size())
	for _, c := range chunks {
		binary.Write(zw, binary.LittleEndian, c.off)
		binary.Write(zw, binary.LittleEndian, uint32(len(c.data)))
		zw.Write(c.data)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
}
