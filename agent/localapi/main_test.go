package localapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// helperEnv, when set, makes the test binary a client instead: it dials
// the socket named and prints what it got (see runAs in the Linux peer
// tests, which start it as another user).
const helperEnv = "MAMORI_LOCALAPI_HELPER_SOCKET"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(helper(path))
	}
	os.Exit(m.Run())
}

// helper dials path and asks for the status: it prints "refused: ...",
// "error: ..." or "role ROLE, status ok". With MAMORI_LOCALAPI_HELPER_HOLD
// set to n it first opens n connections that watch, and keeps them.
func helper(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := strconv.Atoi(os.Getenv("MAMORI_LOCALAPI_HELPER_HOLD")); err == nil {
		for i := range n {
			c, err := Dial(ctx, path)
			if err != nil {
				fmt.Printf("hold %d: %v\n", i, err)
				return 2
			}
			defer c.Close()
			c.send(&Message{Type: TypeWatch, Protocol: ProtocolVersion})
		}
		if os.Getenv("MAMORI_LOCALAPI_HELPER_STAY") != "" {
			// Hold them until standard input closes.
			fmt.Println("holding")
			io.Copy(io.Discard, os.Stdin)
			return 0
		}
	}
	if n, err := strconv.Atoi(os.Getenv("MAMORI_LOCALAPI_HELPER_REPEAT")); err == nil {
		// n status requests (with MAMORI_LOCALAPI_HELPER_WATCH=1, watch
		// requests, each held 20 ms), one after the other, as fast as
		// it can.
		watch := os.Getenv("MAMORI_LOCALAPI_HELPER_WATCH") == "1"
		counts := map[string]int{}
		for range n {
			c, err := Dial(ctx, path)
			if err == nil && watch {
				wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				err = c.Watch(wctx, 0, func(*Warning) error { return nil })
				cancel()
			} else if err == nil {
				_, err = c.Status(ctx)
			}
			switch {
			case err == nil:
				counts["ok"]++
			case errors.Is(err, ErrRefused):
				counts["refused"]++
			default:
				counts["error"]++
				counts["error: "+err.Error()]++
			}
		}
		fmt.Printf("ok %d, refused %d, error %d\n", counts["ok"], counts["refused"], counts["error"])
		for k := range counts {
			if strings.HasPrefix(k, "error: ") {
				fmt.Println(k)
			}
		}
		return 0
	}
	c, err := Dial(ctx, path)
	if errors.Is(err, ErrRefused) {
		fmt.Println("refused:", err)
		return 1
	}
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	if _, err := c.Status(ctx); err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Printf("role %s, status ok\n", c.Hello.Role)
	return 0
}
