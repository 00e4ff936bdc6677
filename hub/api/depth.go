package api

import "fmt"

// maxJSONDepth is the deepest nesting of arrays and objects a batch may
// have. An agent's batch is at most 5 deep (the batch, its events, an
// event, its device or violation, their lists); encoding/json stops at
// 10,000, the faster decoder the batch goes through has no limit of its
// own and recurses, so a body of a few MiB of "[" would exhaust the
// goroutine's stack and end the process.
const maxJSONDepth = 64

// checkDepth reports an error when data nests arrays and objects deeper
// than limit. It scans once, skipping strings (with their escapes); it
// does not validate the JSON (the decoder does).
func checkDepth(data []byte, limit int) error {
	depth := 0
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > limit {
				return fmt.Errorf("nested deeper than %d levels at byte %d", limit, i)
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}
