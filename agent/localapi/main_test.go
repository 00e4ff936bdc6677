package localapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
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
		}
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
