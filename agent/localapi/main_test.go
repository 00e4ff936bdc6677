package localapi

import (
	"context"
	"errors"
	"fmt"
	"os"
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
// "error: ..." or "role ROLE, status ok".
func helper(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
